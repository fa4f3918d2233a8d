#!/usr/bin/env -S node --max-semi-space-size=2 --compact-on-every-full-gc --expose-gc
// podwire-agent: one per node, run in the node's network namespace.
//   podwire-agent --server URL --token-file F [--node-name N] [--iface IF | --public-ip IP]
//                 [--backend vxlan|host-gw|auto] [--masq-mode nftables|iptables] [--run-dir DIR]
//                 [--metrics-listen HOST:PORT|off] [--ipam-data-dir DIR]
//                 [--debug-listen IPV4:PORT|:PORT|off [--debug-tls-cert F --debug-tls-key F]]
//                 [--dns on|off] [--dns-upstream IP[:PORT],...] [--dns-ttl S] [--dns-negative-ttl S] [--dns-pods MODE]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { flagHelp, parseArgs, UsageError, type FlagSpecs } from '../flags/flags.js';
import { ApiClient } from '../client/api-client.js';
import { BACKENDS, type Backend } from '../api/objects.js';
import { Handle } from '../netlink/handle.js';
import { VERSION } from '../version.js';
import { Agent, type AgentState } from './agent.js';
import { CNI_NETWORK_NAME, DEFAULT_IPAM_DATA_DIR, installCni } from './cni-install.js';
import { readIpamUsage } from './ipam-usage.js';
import { AgentMetrics } from './metrics.js';
import { parseListen, startMetricsServer, type MetricsServer } from './metrics-server.js';
import { collectGarbage } from './runtime.js';
import { startLocalApi } from './local-api.js';
import { CniServer } from './cni-server.js';
import { CniDel } from './cni-del.js';
import type { DebugDeps } from './debug/routes.js';
import { debugEndpointUrl, DEFAULT_DEBUG_PORT, parseDebugListen, startDebugEndpoint, type DebugEndpoint } from './debug-endpoint.js';
import { loadOrCreateDebugCert } from './debug-cert.js';
import { TokenReviewer } from './debug-access.js';
import { Masquerade, type MasqMode } from './masq/masq.js';
import { execRunner } from '../exec/runner.js';
import { prepareNodeSysctls } from './node-sysctls.js';
import { vtepMacFor } from './network/desired.js';
import { pickUnderlay } from './underlay.js';
import type { UnderlayInfo } from './network/types.js';
import { proxyNodeIps } from './node-object.js';
import { ServiceProxy, type ServiceProxyDeps } from './service-proxy.js';
import type { ReconcilerOptions } from './reconciler.js';
import { PROXY_MODES, type ProxyBackend, type ProxyMode } from '../proxy/backend.js';
import { NftProxyBackend } from '../proxy/nft/backend.js';
import { IptablesProxyBackend } from '../proxy/iptables/backend.js';
import { IpvsProxyBackend } from '../proxy/ipvs/backend.js';
import { IPVS_SCHEDULERS, type IpvsScheduler } from '../proxy/ipvs/plan.js';
import { RealIpvsKernel, fileOwnership } from './ipvs-kernel.js';
import { parseUpstream, type Upstream } from '../dns/resolv-conf.js';
import type { PodRecordsMode } from '../dns/records.js';
import { NodeDns, nodeUpstreams } from './dns/node-dns.js';
import { realNodeDnsKernel } from './dns/kernel.js';
import { realDnsProbe } from './dns/probe.js';
import { gatewayOf } from './network/desired.js';

const FLAGS: FlagSpecs = {
  server: { type: 'string', help: 'control plane URL, e.g. https://10.0.0.1:6443' },
  'token-file': { type: 'string', help: 'this node\'s token (podwire token create NODE)' },
  'ca-file': { type: 'string', help: 'PEM CA of the control plane\'s certificate' },
  'node-name': { type: 'string', help: 'Node name (default: the hostname)' },
  iface: { type: 'string', help: 'underlay interface (default: the default route\'s, else the only one with an IPv4 address)' },
  'public-ip': { type: 'string', help: 'underlay address to advertise' },
  backend: { type: 'enum', choices: BACKENDS, help: 'overlay backend (default: the cluster config\'s)' },
  'masq-mode': { type: 'enum', choices: ['nftables', 'iptables'], default: 'nftables', help: 'masquerade in' },
  'vxlan-notrack': { type: 'enum', choices: ['on', 'off'], default: 'on', help: 'with a VXLAN device, keep its outer packets (UDP to the VXLAN port) out of conntrack (nftables masq mode; measured in BENCHMARKS.md); off: tracked, as flannel does' },
  'proxy-mode': { type: 'enum', choices: [...PROXY_MODES, 'none'], default: 'nftables', help: 'service proxy' },
  'ipvs-scheduler': { type: 'enum', choices: [...IPVS_SCHEDULERS], default: 'rr', help: 'IPVS scheduler in --proxy-mode ipvs (its kernel module ip_vs_NAME must exist)' },
  'run-dir': { type: 'string', default: '/run/podwire', help: 'subnet.env, state.json, the local socket' },
  socket: { type: 'string', help: 'local API socket (default RUN_DIR/agent.sock)' },
  'resync-interval': { type: 'int', default: 30, min: 1, max: 3600, help: 'seconds between resyncs (network: full; service proxy: a cheap check, a full sync if something is missing and at least hourly)' },
  'log-level': { type: 'enum', choices: ['fatal', 'error', 'warn', 'info', 'debug', 'silent'], default: 'info', help: 'log level' },
  'install-cni': { type: 'bool', help: 'install the CNI plugin and a conflist (see --cni-bin-dir, --cni-conf-dir)' },
  'cni-bin-dir': { type: 'string', default: '/opt/cni/bin', help: 'where --install-cni puts the plugin' },
  'cni-conf-dir': { type: 'string', default: '/etc/cni/net.d', help: 'where --install-cni puts 10-podwire.conflist' },
  'metrics-listen': { type: 'string', default: '127.0.0.1:10249', help: 'HOST:PORT for GET /metrics (Prometheus text) and /healthz, in the agent\'s netns (kube-proxy\'s port); off (or empty) disables it' },
  'ipam-data-dir': { type: 'string', default: DEFAULT_IPAM_DATA_DIR, help: 'the CNI plugin\'s IPAM dataDir (its reservations: the podwire_ipam_addresses metric)' },
  'debug-listen': { type: 'string', default: 'off', help: `IPV4:PORT or :PORT (the underlay address) for the authenticated HTTPS debug API (admin tokens, checked with the control plane); recommended :${DEFAULT_DEBUG_PORT}; off by default` },
  'debug-tls-cert': { type: 'string', help: 'PEM certificate of the debug endpoint (default: a self-signed one made once in RUN_DIR)' },
  'debug-tls-key': { type: 'string', help: 'PEM key for --debug-tls-cert' },
  dns: { type: 'enum', choices: ['on', 'off'], default: 'on', help: 'answer the cluster DNS on this node (the kube-dns ClusterIP bound on lo, queries from this node\'s pods untracked; off: no server, and the table inet podwire-dns is removed)' },
  'dns-upstream': { type: 'string', help: 'comma-separated IP[:PORT] resolvers for names outside the cluster zone (default: the nameservers of /etc/resolv.conf)' },
  'dns-ttl': { type: 'int', default: 5, min: 0, max: 3600, help: 'TTL of cluster DNS answers, seconds (CoreDNS\'s ttl)' },
  'dns-negative-ttl': { type: 'int', default: 1, min: 0, max: 3600, help: 'how long NXDOMAIN/NODATA may be cached, seconds (the SOA\'s TTL and minimum)' },
  'cni-server': { type: 'enum', choices: ['on', 'off'], default: 'on', help: 'run CNI commands for the native CNI client on the local socket (POST /v1/cni: no Node start per pod); off: the client runs the Node plugin itself' },
  'cni-fast-del': { type: 'enum', choices: ['on', 'off'], default: 'on', help: 'answer a CNI DEL once the pod\'s veth is down, then delete the veths of many DELs in one request and release their IPs (journal in --run-dir/cni-del); off: each DEL deletes its veth before answering' },
  'dns-pods': { type: 'enum', choices: ['insecure', 'verified', 'disabled'], default: 'insecure', help: 'pod records a-b-c-d.NS.pod.ZONE, as CoreDNS\'s pods option' },
};

const PLUGIN_BUNDLE = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..', 'bin', 'podwire-cni.mjs');
/** The CNI fast path's native client (scripts/bundle.js builds it when a C compiler is there). */
const CNI_CLIENT = path.join(path.dirname(PLUGIN_BUNDLE), 'podwire-cni-client');

const USAGE = `podwire-agent ${VERSION}: the node agent (run it in the node's network namespace)\n\n${flagHelp(FLAGS)}`;

function need(v: unknown, flag: string): string {
  if (typeof v !== 'string' || v === '') throw new UsageError(`--${flag} is required; see podwire-agent --help`);
  return v;
}


function makeProxyBackends(log: pino.Logger, ipvs: IpvsDeps): Record<ProxyMode, ProxyBackend> {
  const onSkip = (key: string, reason: string) => log.warn({ service: key, reason }, 'service port not proxied');
  return {
    nftables: new NftProxyBackend(execRunner, onSkip),
    iptables: new IptablesProxyBackend(execRunner, onSkip),
    ipvs: new IpvsProxyBackend(new RealIpvsKernel(ipvs.handle, execRunner), execRunner, fileOwnership(path.join(ipvs.runDir, 'ipvs-services.json')), {
      scheduler: ipvs.scheduler, nodeLocal: ipvs.nodeLocal, onSkip,
    }),
  };
}

/** What the IPVS mode's backend needs beyond the others (it is built in every mode: a mode switch removes its state). */
interface IpvsDeps {
  handle: Handle;
  runDir: string;
  scheduler: IpvsScheduler;
  /** The cluster DNS addresses the node-local server answers (no virtual service for them). */
  nodeLocal: Set<string>;
}

async function main(argv: string[]): Promise<number> {
  if (argv[0] === '--version' || argv[0] === 'version') {
    console.log(VERSION);
    return 0;
  }
  if (argv[0] === '--help' || argv[0] === '-h') {
    console.log(USAGE);
    return 0;
  }
  const { flags, positional } = parseArgs(argv, FLAGS);
  if (positional.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positional[0])}`);
  return serve(optionsFrom(flags));
}

/** What the flags ask for, with the token and CA read: a bad flag fails before anything starts. */
interface AgentOptions {
  server: string;
  token: string;
  ca?: Buffer;
  nodeName: string;
  backend?: Backend;
  masqMode: MasqMode;
  vxlanNotrack: boolean;
  proxyMode: ProxyMode | 'none';
  ipvsScheduler: IpvsScheduler;
  runDir: string;
  socketPath: string;
  resyncMs: number;
  logLevel: string;
  iface?: string;
  publicIp?: string;
  installCni?: { binDir: string; confDir: string };
  /** --cni-server on: the CNI fast path on the local socket. */
  cniServer: boolean;
  /** --cni-fast-del on: DELs answered once the pod is cut off (src/agent/cni-del.ts). */
  cniFastDel: boolean;
  metricsListen?: { host: string; port: number };
  ipamDataDir: string;
  cniConfDir: string;
  /** --debug-listen as given (":PORT" is resolved against the underlay address at start). */
  debugListen?: string;
  debugTls?: { cert: string; key: string };
  /** Undefined: --dns off. */
  dns?: { upstreams?: Upstream[]; ttl: number; negativeTtl: number; podRecords: PodRecordsMode };
}

function optionsFrom(flags: Record<string, unknown>): AgentOptions {
  const server = need(flags.server, 'server');
  const tokenFile = need(flags['token-file'], 'token-file');
  const nodeName = (flags['node-name'] as string | undefined) ?? os.hostname().toLowerCase();
  const runDir = path.resolve(flags['run-dir'] as string);
  let metricsListen: { host: string; port: number } | undefined;
  try {
    metricsListen = parseListen(flags['metrics-listen'] as string);
  } catch (e) {
    throw new UsageError(`--metrics-listen: ${(e as Error).message}`);
  }
  let token: string;
  try {
    token = fs.readFileSync(tokenFile, 'utf8').trim();
  } catch (e) {
    throw new UsageError(`--token-file ${tokenFile}: ${(e as Error).message}`);
  }
  return {
    server,
    token,
    ca: flags['ca-file'] ? fs.readFileSync(flags['ca-file'] as string) : undefined,
    nodeName,
    backend: flags.backend as Backend | undefined,
    masqMode: flags['masq-mode'] as MasqMode,
    vxlanNotrack: flags['vxlan-notrack'] === 'on',
    proxyMode: flags['proxy-mode'] as ProxyMode | 'none',
    ipvsScheduler: flags['ipvs-scheduler'] as IpvsScheduler,
    runDir,
    socketPath: (flags.socket as string | undefined) ?? path.join(runDir, 'agent.sock'),
    resyncMs: (flags['resync-interval'] as number) * 1000,
    logLevel: flags['log-level'] as string,
    iface: flags.iface as string | undefined,
    publicIp: flags['public-ip'] as string | undefined,
    installCni: flags['install-cni'] ? { binDir: flags['cni-bin-dir'] as string, confDir: flags['cni-conf-dir'] as string } : undefined,
    cniServer: flags['cni-server'] === 'on',
    cniFastDel: flags['cni-fast-del'] === 'on',
    metricsListen,
    ipamDataDir: path.resolve(flags['ipam-data-dir'] as string),
    cniConfDir: path.resolve(flags['cni-conf-dir'] as string),
    ...debugOptions(flags),
    ...dnsOptions(flags),
  };
}

function dnsOptions(flags: Record<string, unknown>): Pick<AgentOptions, 'dns'> {
  if (flags.dns === 'off') return {};
  const text = flags['dns-upstream'] as string | undefined;
  let upstreams: Upstream[] | undefined;
  if (text !== undefined) {
    upstreams = text.split(',').filter((x) => x.trim() !== '').map((x) => {
      const u = parseUpstream(x.trim());
      if (!u) throw new UsageError(`--dns-upstream: ${JSON.stringify(x.trim())} is not IP, IP:PORT or [IPV6]:PORT`);
      return u;
    });
  }
  return { dns: { ...(upstreams ? { upstreams } : {}), ttl: flags['dns-ttl'] as number, negativeTtl: flags['dns-negative-ttl'] as number, podRecords: flags['dns-pods'] as PodRecordsMode } };
}

function debugOptions(flags: Record<string, unknown>): Pick<AgentOptions, 'debugListen' | 'debugTls'> {
  const listen = flags['debug-listen'] as string;
  try {
    parseDebugListen(listen, '192.0.2.1'); // the syntax now; the address once the underlay is known
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const cert = flags['debug-tls-cert'] as string | undefined;
  const key = flags['debug-tls-key'] as string | undefined;
  if ((cert === undefined) !== (key === undefined)) throw new UsageError('--debug-tls-cert and --debug-tls-key go together');
  return { ...(listen !== 'off' && listen !== '' ? { debugListen: listen } : {}), ...(cert !== undefined ? { debugTls: { cert, key: key! } } : {}) };
}

/** Runs until a signal: the process then exits from shutdown(), so this never returns a code. */
async function serve(o: AgentOptions): Promise<number> {
  const log = pino({ level: o.logLevel, base: { node: o.nodeName } });
  const handle = Handle.open();
  const underlay = pickUnderlay({ links: handle.linkList(), addrs: handle.addrList(), routes: handle.routeList({ table: 254 }) }, { iface: o.iface, publicIp: o.publicIp });
  const client = new ApiClient({ server: o.server, token: o.token, ca: o.ca, timeoutMs: 10_000 });
  fs.mkdirSync(o.runDir, { recursive: true, mode: 0o755 });
  // The service proxy starts after registration, but the agent's callbacks and the local API see it.
  const running: { proxy?: ServiceProxy; agent?: Agent; dns?: NodeDns; cniDel?: CniDel } = {};
  const metrics = o.metricsListen ? createMetrics(o, running) : undefined;
  const published: { debugEndpoint?: { url: string; certSha256: string } } = {};
  const agent = (running.agent = createAgent(o, { client, handle, underlay, log }, running, metrics, () => published.debugEndpoint));
  log.info({ version: VERSION, underlay, server: o.server }, 'starting');
  // The local socket and the HTTPS debug endpoint serve the same routes and the same /v1/status.
  const debug = debugDeps(o, agent, handle, running);
  const cniDel = (running.cniDel = startCniDel(o, log));
  const onCniDone = (r: { command: string; code: number; seconds: number }) => {
    log.debug(r, 'CNI request');
    metrics?.cniRequest(r);
  };
  const cni = o.cniServer ? new CniServer({ onDone: onCniDone, ...(o.cniFastDel ? { del: cniDel } : {}) }) : undefined;
  const status = () => ({ ...agent.state, proxy: running.proxy?.status, dns: running.dns?.status(), cni: cni?.stats(), process: processStats(), ...networkDrift(agent) });
  const api = await startLocalApi({ socketPath: o.socketPath, client, state: status, debug, ...(cni ? { cni } : {}), onForwarded: metrics && ((r) => metrics.podRequest(r)) });
  const metricsServer = metrics && o.metricsListen ? serveMetrics(o.metricsListen, metrics, log) : undefined;
  const debugServer = o.debugListen ? await serveDebug(o, underlay.ip, client, status, debug, log) : undefined;
  if (debugServer) published.debugEndpoint = { url: debugEndpointUrl(debugServer.address, underlay.ip), certSha256: debugServer.certSha256 };
  // cniDel.drain(): the DELs answered and not finished yet get their veths deleted, their IPs released.
  onShutdownSignals(log, () => [agent.stop(), running.proxy?.stop(), running.dns?.stop(), api.close(), cniDel.drain(), metricsServer?.close(), debugServer?.close()], () => {
    cniDel.close();
    client.close();
    handle.close();
  });
  await agent.start();
  // After registration: the conflist carries the cluster config's clusterDNS and clusterDomain.
  if (o.installCni) installCniFiles(o, o.installCni, agent.state.clusterDns, log);
  if (o.proxyMode !== 'none' && agent.state.clusterCidr) {
    const dnsIp = o.dns ? agent.state.clusterDns?.clusterDNS : undefined;
    running.proxy = startServiceProxy(o.proxyMode, {
      ipvs: { handle, runDir: o.runDir, scheduler: o.ipvsScheduler, nodeLocal: new Set(dnsIp ? [`udp/${dnsIp}:53`, `tcp/${dnsIp}:53`] : []) },
      client, nodeName: o.nodeName, nodeIPs: proxyNodeIps(agent.selfNode(), [underlay.ip]), clusterCidrs: [agent.state.clusterCidr], log,
      reconciler: { resyncMs: o.resyncMs, ...(metrics ? { onSync: metrics.onSync('proxy') } : {}) },
      ...(metrics ? { onRulesSynced: (s) => metrics.rulesSynced(s) } : {}),
    });
  }
  running.dns = startNodeDns(o, agent.state, { client, handle, log }, metrics);
  return -1;
}

/** Fast DELs' state; the DELs a killed agent answered and did not finish are finished first. */
function startCniDel(o: AgentOptions, log: pino.Logger): CniDel {
  const del = new CniDel({
    journalDir: path.join(o.runDir, 'cni-del'),
    onError: (err, who) => log.error({ err: err.message, ...who }, 'CNI DEL: finishing it failed; its journal entry stays for the next start (CNI GC also releases it)'),
  });
  const finished = del.replay();
  if (finished > 0) log.info({ finished }, 'CNI DEL: finished the DELs a previous agent had answered');
  return del;
}

/** The node-local cluster DNS, once registration gave the cluster DNS address and this node's podCIDR. */
function startNodeDns(o: AgentOptions, state: AgentState, io: { client: ApiClient; handle: Handle; log: pino.Logger }, metrics?: AgentMetrics): NodeDns | undefined {
  const kernel = realNodeDnsKernel(io.handle, execRunner);
  if (!o.dns) {
    try {
      NodeDns.removeRules(kernel);
    } catch (e) {
      io.log.warn({ err: (e as Error).message }, 'dns: --dns off, but removing table inet podwire-dns failed');
    }
    return undefined;
  }
  if (!state.clusterDns || !state.podCidr) {
    io.log.warn({}, 'dns: the control plane gives no clusterDNS (an older release?): not serving the cluster DNS');
    return undefined;
  }
  const { upstreams, skipped } = nodeUpstreams(o.dns.upstreams);
  for (const why of skipped) io.log.warn({}, `dns: upstream skipped: ${why}`);
  const dns = new NodeDns({
    nodeName: o.nodeName, clusterDns: state.clusterDns.clusterDNS, zone: state.clusterDns.clusterDomain, gateway: gatewayOf(state.podCidr),
    upstreams, ttl: o.dns.ttl, negativeTtl: o.dns.negativeTtl, podRecords: o.dns.podRecords,
    // One observer for both listeners (the server label tells them apart): coredns_* on --metrics-listen.
    ...(metrics ? { server: { observer: metrics.dnsObserver() } } : {}),
  }, { client: io.client, kernel, log: io.log, probe: realDnsProbe(state.clusterDns.clusterDomain) });
  dns.start();
  return dns;
}

function debugDeps(o: AgentOptions, agent: Agent, handle: Handle, running: { proxy?: ServiceProxy; dns?: NodeDns }): DebugDeps {
  return { nodeName: o.nodeName, agent, handle, proxy: () => running.proxy, dns: () => running.dns?.status(), proxyMode: o.proxyMode, masqMode: o.masqMode, vxlanNotrack: o.vxlanNotrack, runDir: o.runDir, ipamDataDir: o.ipamDataDir, cniConfDir: o.cniConfDir };
}

/** The gauges read the agent's and the proxy's state, and the IPAM directory, when scraped. */
function createMetrics(o: AgentOptions, running: { proxy?: ServiceProxy; agent?: Agent; cniDel?: CniDel }): AgentMetrics {
  return new AgentMetrics({
    network: () => {
      const s = running.agent?.state;
      return s?.lastSync ? { peers: s.peers.length, objects: s.lastSync.objects } : undefined;
    },
    proxy: () => running.proxy?.status,
    cniDel: () => (o.cniServer && o.cniFastDel ? running.cniDel?.stats() : undefined),
    ipam: () => {
      const podCidr = running.agent?.state.podCidr;
      return podCidr ? readIpamUsage(path.join(o.ipamDataDir, CNI_NETWORK_NAME), podCidr) : undefined;
    },
  });
}

/**
 * Listens in the background, retrying every 5 s while the address cannot be bound (as kube-proxy
 * does): the metrics endpoint must not keep the node's network from being set up.
 */
function serveMetrics(listen: { host: string; port: number }, metrics: AgentMetrics, log: pino.Logger): { close(): Promise<void> } {
  let server: MetricsServer | undefined;
  let retry: NodeJS.Timeout | undefined;
  let closed = false;
  const attempt = (): void => {
    startMetricsServer(listen, metrics).then(
      (s) => {
        if (closed) return void s.close();
        server = s;
        log.info({ metrics: `${listen.host}:${s.address.port}` }, 'serving /metrics');
      },
      (e: Error) => {
        if (closed) return;
        log.error({ err: e.message, listen: `${listen.host}:${listen.port}`, retryInMs: 5000 }, 'cannot serve /metrics; retrying');
        retry = setTimeout(attempt, 5000);
        retry.unref();
      },
    );
  };
  attempt();
  return {
    close: async () => {
      closed = true;
      clearTimeout(retry);
      await server?.close();
    },
  };
}

/**
 * The HTTPS debug endpoint, started before registration so the Node publishes it. One that cannot
 * start (no openssl, a bad certificate, the port taken) is logged and not published: the node's
 * network does not wait for it.
 */
async function serveDebug(o: AgentOptions, underlayIp: string, client: ApiClient, state: () => unknown, debug: DebugDeps, log: pino.Logger): Promise<(DebugEndpoint & { certSha256: string }) | undefined> {
  try {
    const listen = parseDebugListen(o.debugListen!, underlayIp)!;
    const cert = loadOrCreateDebugCert({ ...(o.debugTls ? { certFile: o.debugTls.cert, keyFile: o.debugTls.key } : {}), runDir: o.runDir, nodeName: o.nodeName, ip: listen.host === '0.0.0.0' ? underlayIp : listen.host });
    const server = await startDebugEndpoint({ listen, tls: cert, reviewer: new TokenReviewer(client), state, debug });
    log.info({ debugEndpoint: debugEndpointUrl(server.address, underlayIp), certSha256: cert.sha256, certFile: cert.certFile }, 'serving the HTTPS debug API');
    return { ...server, certSha256: cert.sha256 };
  } catch (e) {
    log.error({ err: (e as Error).message, listen: o.debugListen }, 'cannot serve the HTTPS debug API; not published on the Node');
    return undefined;
  }
}

function createAgent(o: AgentOptions, io: { client: ApiClient; handle: Handle; underlay: UnderlayInfo; log: pino.Logger }, running: { proxy?: ServiceProxy }, metrics?: AgentMetrics, debugEndpoint?: () => { url: string; certSha256: string } | undefined): Agent {
  // The other masquerade mode's rules go after this mode's first good sync (Masquerade.sync).
  const masq = new Masquerade(execRunner, o.masqMode, path.join(o.runDir, 'masquerade.json'));
  return new Agent({
    ...io,
    masq,
    nodeName: o.nodeName,
    vtepMac: vtepMacFor(o.nodeName),
    backend: o.backend,
    vxlanNotrack: o.vxlanNotrack,
    runDir: o.runDir,
    // ip_forward and br_netfilter's bridge-nf-call-*: /proc/sys/net is this process's netns.
    prepareNode: () => {
      for (const w of prepareNodeSysctls(execRunner)) io.log.warn({ sysctl: w.key }, w.message);
    },
    reconciler: { resyncMs: o.resyncMs, ...(metrics ? { onSync: metrics.onSync('network') } : {}) },
    // NodePorts follow the addresses of this node's Node (a full proxy sync when they change).
    onSelf: (node) => running.proxy?.setNodeIps(proxyNodeIps(node, [io.underlay.ip])),
    ...(debugEndpoint ? { debugEndpoint } : {}),
  });
}

function installCniFiles(o: AgentOptions, dirs: { binDir: string; confDir: string }, clusterDns: AgentState['clusterDns'], log: pino.Logger): void {
  const client = fs.existsSync(CNI_CLIENT) ? { clientSource: CNI_CLIENT } : {};
  const written = installCni({ pluginSource: PLUGIN_BUNDLE, ...client, binDir: dirs.binDir, confDir: dirs.confDir, subnetFile: path.join(o.runDir, 'subnet.env'), agentSocket: o.socketPath, nodeName: o.nodeName, ...(clusterDns ? { clusterDns } : {}) });
  log.info({ written }, written.length ? 'installed the CNI plugin and conflist' : 'CNI plugin and conflist already installed');
}

/** SIGTERM/SIGINT stop the loops and exit 0; the kernel state stays. A stop that hangs exits 1 after 5 s. */
function onShutdownSignals(log: pino.Logger, stops: () => Array<Promise<unknown> | undefined>, release: () => void): void {
  const shutdown = (signal: string): void => {
    log.info({ signal }, 'stopping (the kernel state stays: pods keep their network)');
    const force = setTimeout(() => process.exit(1), 5000);
    force.unref();
    void Promise.allSettled(stops()).then(() => {
      release();
      process.exit(0);
    });
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

/** /v1/status's outOfSync (the steps a network sync would take now); a failed look is reported, never thrown. */
function networkDrift(agent: Agent): { outOfSync?: string[]; outOfSyncError?: string } {
  try {
    const steps = agent.outOfSync();
    return steps ? { outOfSync: steps } : {};
  } catch (e) {
    return { outOfSyncError: (e as Error).message };
  }
}

/** The agent's own footprint in /v1/status (the services benchmark reads it), MB with 1 decimal. */
function processStats(): { rssMB: number; heapUsedMB: number; heapTotalMB: number; externalMB: number; uptimeS: number } {
  const m = process.memoryUsage();
  const mb = (n: number) => Math.round(n / 104857.6) / 10;
  return { rssMB: mb(m.rss), heapUsedMB: mb(m.heapUsed), heapTotalMB: mb(m.heapTotal), externalMB: mb(m.external + m.arrayBuffers), uptimeS: Math.round(process.uptime()) };
}

/** kube-proxy's part, once the node knows its cluster CIDR (after registration). */
function startServiceProxy(mode: ProxyMode, o: { ipvs: IpvsDeps; client: ApiClient; nodeName: string; nodeIPs: string[]; clusterCidrs: string[]; log: pino.Logger; reconciler: ReconcilerOptions; onRulesSynced?: ServiceProxyDeps['onRulesSynced'] }): ServiceProxy {
  const backends = makeProxyBackends(o.log, o.ipvs);
  const { ipvs: _ipvs, ...deps } = o;
  const proxy = new ServiceProxy({ ...deps, collectGarbage, backend: backends[mode], others: PROXY_MODES.filter((m) => m !== mode).map((m) => backends[m]), runner: execRunner });
  proxy.start();
  return proxy;
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (err: Error) => {
    process.stderr.write(`podwire-agent: ${err.message}\n`);
    process.exit(err instanceof UsageError ? 2 : 1);
  },
);
