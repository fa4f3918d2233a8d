// The agent's read-only debug API (issue 15): what only the agent knows (its desired state, its
// last syncs) and what it can read or do in its node's netns (routes, neighbours, FDB, the live
// ruleset and its counters, probes from inside a pod's netns). Served on the local socket
// (local-api.ts) and, for the CLI on other machines, on the authenticated remote endpoint. Each
// debugging command's routes live in their own file here and are registered below; none of them
// changes the node's network (a probe sends packets, nothing else), but for trace: its start adds a
// table of its own, inet podwire-trace-<id>, that marks only the probe for nftables tracing and is
// removed on stop or after its ttl (at most 30 s), or at the next start of an agent killed mid-trace.
import type { FastifyInstance } from 'fastify';
import type { Agent } from '../agent.js';
import type { ServiceProxy } from '../service-proxy.js';
import type { Handle } from '../../netlink/handle.js';
import type { ProxyMode } from '../../proxy/backend.js';
import type { NodeDnsStatus } from '../dns/node-dns.js';
import { registerPeerRoutes } from './peers.js';
import { registerPingRoutes } from './ping.js';
import { registerDoctorRoutes } from './doctor.js';
import { registerExplainRoutes } from './explain.js';
import { registerConnectRoutes } from './connect.js';
import { registerResolveRoutes } from './resolve.js';
import { registerTraceRoutes } from './trace.js';
import { execRunner } from '../../exec/runner.js';
import { registerServiceRoutes } from './services.js';

export interface DebugDeps {
  nodeName: string;
  agent: Agent;
  /** The agent's netlink handle on its own (the node's) netns. */
  handle: Handle;
  /** The service proxy once it runs (after registration; never with --proxy-mode none). */
  proxy: () => ServiceProxy | undefined;
  /** The node-local cluster DNS's status once it runs (never with --dns off). */
  dns?: () => NodeDnsStatus | undefined;
  proxyMode: ProxyMode | 'none';
  masqMode: 'nftables' | 'iptables';
  /** --vxlan-notrack (doctor expects the notrack chains with a VXLAN device). */
  vxlanNotrack?: boolean;
  runDir: string;
  /** The CNI plugin's IPAM dataDir (reservations under <dir>/<network name>/). */
  ipamDataDir: string;
  /** Where CNI network configs are read by the runtime (--cni-conf-dir). */
  cniConfDir: string;
}

export function registerDebugRoutes(app: FastifyInstance, deps: DebugDeps): void {
  registerPeerRoutes(app, deps);
  registerPingRoutes(app, deps);
  registerDoctorRoutes(app, deps);
  registerExplainRoutes(app, deps);
  registerConnectRoutes(app, deps);
  registerResolveRoutes(app, deps);
  registerTraceRoutes(app, { ...deps, runner: execRunner });
  registerServiceRoutes(app, deps);
}
