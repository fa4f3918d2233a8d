// GET /v1/debug/doctor: the facts `podwire doctor` checks, gathered in this node's netns (the
// agent runs in it, so /proc/sys/net is the node's), and the findings the pure checks
// (doctor-checks.ts) make of them. Read-only: sysctls, links, addresses, `nft list chains`, the
// CNI conf dir, the IPAM reservation files and, for each reservation, whether a netns holds its IP.
import fs from 'node:fs';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Agent } from '../agent.js';
import type { ServiceProxy } from '../service-proxy.js';
import type { Handle } from '../../netlink/handle.js';
import type { ProxyMode } from '../../proxy/backend.js';
import { desiredNetwork } from '../network/desired.js';
import type { DesiredNetwork } from '../network/types.js';
import { execRunner, type CommandRunner } from '../../exec/runner.js';
import { NFT_MASQ_CHAIN, NFT_NOTRACK_CHAINS, NFT_TABLE } from '../../exec/names.js';
import { CHAINS } from '../../proxy/nft/layout.js';
import { findPodNetns } from './pod-netns.js';
import { doctorChecks, type DnsFacts, type DoctorFacts, type Finding } from './doctor-checks.js';
import type { NodeDnsStatus } from '../dns/node-dns.js';
import { DNS_TABLE_SPEC } from '../dns/rules.js';
import { ipvsSysctls } from '../ipvs-kernel.js';
import { IPVS_DEVICE } from '../../proxy/ipvs/plan.js';
import { IPVS_CHAINS } from '../../proxy/ipvs/nft.js';

/** What the route needs of routes.ts DebugDeps (not imported: routes.ts imports this file). */
export interface DoctorRouteDeps {
  nodeName: string;
  agent: Pick<Agent, 'networkInput' | 'outOfSync' | 'state'>;
  handle: Handle;
  proxy: () => ServiceProxy | undefined;
  proxyMode: ProxyMode | 'none';
  masqMode: 'nftables' | 'iptables';
  /** --vxlan-notrack (default on): with a VXLAN device, the notrack chains are expected too. */
  vxlanNotrack?: boolean;
  ipamDataDir: string;
  cniConfDir: string;
  /** The node-local cluster DNS's status (undefined: not running). */
  dns?: () => NodeDnsStatus | undefined;
}

/** A reservation younger than this may belong to a CNI ADD still in progress: never flagged. */
const IPAM_GRACE_MS = 60_000;

/** A sysctl by its path segments (an interface name may hold a dot: podwire.1). */
function readSysctl(parts: string[]): string | undefined {
  try {
    return fs.readFileSync(path.join('/proc/sys', ...parts), 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** The CNI conf files in the runtime's (lexical) order, each with whether it is podwire's. */
export function readCniConf(dir: string): DoctorFacts['cni'] {
  let names: string[];
  try {
    names = fs.readdirSync(dir).filter((n) => /\.(conf|conflist|json)$/.test(n)).sort();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? { confDir: dir, files: [] } : { confDir: dir, files: [], error: (e as Error).message };
  }
  return {
    confDir: dir,
    files: names.map((name) => {
      try {
        const conf = JSON.parse(fs.readFileSync(path.join(dir, name), 'utf8')) as { type?: unknown; plugins?: { type?: unknown }[] };
        const types = Array.isArray(conf.plugins) ? conf.plugins.map((p) => p?.type) : [conf.type];
        return { name, ours: types[0] === 'podwire' };
      } catch (e) {
        return { name, ours: false, error: `unreadable: ${(e as Error).message}` };
      }
    }),
  };
}

/** Reservations (<dataDir>/<network>/<ip>: "<containerId>\n<ifname>\n") whose IP no netns holds. */
export function ipamOrphans(dataDir: string, now: number, holds: (ip: string) => boolean): DoctorFacts['ipamOrphans'] {
  const out: DoctorFacts['ipamOrphans'] = [];
  let networks: fs.Dirent[];
  try {
    networks = fs.readdirSync(dataDir, { withFileTypes: true }).filter((d) => d.isDirectory());
  } catch {
    return out;
  }
  for (const net of networks) {
    const dir = path.join(dataDir, net.name);
    let files: fs.Dirent[];
    try {
      files = fs.readdirSync(dir, { withFileTypes: true }).filter((e) => e.isFile() && /^[0-9A-Fa-f.:]+$/.test(e.name) && /[.:]/.test(e.name));
    } catch {
      continue;
    }
    for (const f of files) {
      try {
        const p = path.join(dir, f.name);
        if (now - fs.statSync(p).mtimeMs < IPAM_GRACE_MS) continue;
        const [containerId = '', ifname = ''] = fs.readFileSync(p, 'utf8').split('\n');
        if (!holds(f.name)) out.push({ network: net.name, ip: f.name, containerId, ifname });
      } catch {
        // Released while we looked: not a leak.
      }
    }
  }
  return out;
}

/**
 * The chains of table inet podwire this node should have: the masquerade chain (nftables masq
 * mode), the VXLAN notrack chains (also when the network plan has a VXLAN device, as the agent's
 * sync writes them, unless --vxlan-notrack off), and the proxy's base and fixed chains once it has synced.
 */
export function expectedNftChains(o: { masqMode: 'nftables' | 'iptables'; vxlanNotrack?: boolean; vxlanDevice: boolean; proxyMode: ProxyMode | 'none'; proxySynced: boolean }): string[] {
  const want: string[] = [];
  if (o.masqMode === 'nftables') want.push(NFT_MASQ_CHAIN);
  if (o.masqMode === 'nftables' && o.vxlanNotrack !== false && o.vxlanDevice) want.push(...Object.values(NFT_NOTRACK_CHAINS));
  if (o.proxySynced && o.proxyMode === 'nftables') want.push(...Object.values(CHAINS));
  if (o.proxySynced && o.proxyMode === 'ipvs') want.push(...Object.values(IPVS_CHAINS));
  return want;
}

function nftFacts(deps: DoctorRouteDeps, runner: CommandRunner, desired: DesiredNetwork | undefined): DoctorFacts['nft'] {
  const want = expectedNftChains({
    masqMode: deps.masqMode, vxlanNotrack: deps.vxlanNotrack, vxlanDevice: desired?.vxlan !== undefined,
    proxyMode: deps.proxyMode, proxySynced: deps.proxy()?.status.lastSync !== undefined,
  });
  if (!want.length) return undefined;
  const base = { tableFamily: 'inet', table: NFT_TABLE };
  let r;
  try {
    r = runner.run('nft', ['-j', 'list', 'chains', 'inet']);
  } catch (e) {
    return { ...base, tablePresent: false, missingChains: [], error: (e as Error).message };
  }
  if (r.code !== 0) return { ...base, tablePresent: false, missingChains: [], error: `nft -j list chains inet exited ${r.code}: ${r.stderr.trim()}` };
  let chains: { table: string; name: string }[];
  try {
    const items = (JSON.parse(r.stdout) as { nftables?: { chain?: { table: string; name: string } }[] }).nftables ?? [];
    chains = items.flatMap((i) => (i.chain ? [i.chain] : []));
  } catch (e) {
    return { ...base, tablePresent: false, missingChains: [], error: `nft -j output unreadable: ${(e as Error).message}` };
  }
  const ours = new Set(chains.filter((c) => c.table === NFT_TABLE).map((c) => c.name));
  const tables = new Set(chains.map((c) => c.table));
  let tablePresent = tables.has(NFT_TABLE);
  if (!tablePresent && ours.size === 0) {
    // A table with no chains lists no chain: ask for the table itself.
    tablePresent = runner.run('nft', ['list', 'table', 'inet', NFT_TABLE]).code === 0;
  }
  return { ...base, tablePresent, missingChains: want.filter((c) => !ours.has(c)) };
}

/** IPVS mode: the module, the dummy device and the sysctls the mode sets (ipvs-kernel.ts says why). */
function ipvsFacts(deps: DoctorRouteDeps): DoctorFacts['ipvs'] {
  if (deps.proxyMode !== 'ipvs') return undefined;
  const loaded = fs.existsSync('/proc/net/ip_vs');
  return {
    loaded,
    device: deps.handle.linkFind(IPVS_DEVICE) !== undefined,
    synced: deps.proxy()?.status.lastSync?.error === undefined && deps.proxy()?.status.lastSync !== undefined,
    sysctls: Object.entries(ipvsSysctls()).map(([key, want]) => ({ key: key.replace(/\//g, '.'), want, have: readSysctl(key.split('/')) })),
  };
}

function dnsFacts(deps: DoctorRouteDeps, runner: CommandRunner): DnsFacts | undefined {
  const s = deps.dns?.();
  if (!s) return undefined;
  const base: DnsFacts = { clusterDns: s.clusterDns, gateway: s.gateway, synced: s.synced, listening: s.listening, upstreams: s.upstreams, loops: s.loops, fallbackDown: s.fallbackDown ?? [], ...(s.error ? { error: s.error } : {}) };
  try {
    const r = runner.run('nft', ['list', 'table', DNS_TABLE_SPEC]);
    if (r.code === 0) return { ...base, tablePresent: true };
    // "No such file or directory": the table does not exist; anything else is nft's own trouble.
    return /No such file|does not exist/i.test(r.stderr) ? { ...base, tablePresent: false } : { ...base, tableError: `nft list table ${DNS_TABLE_SPEC} exited ${r.code}: ${r.stderr.trim()}` };
  } catch (e) {
    return { ...base, tableError: (e as Error).message };
  }
}

export function gatherDoctorFacts(deps: DoctorRouteDeps, runner: CommandRunner = execRunner, now = Date.now()): DoctorFacts {
  const input = deps.agent.networkInput();
  const desired = input ? desiredNetwork(input) : undefined;
  const links = deps.handle.linkList();
  const bridge = links.find((l) => l.name === (desired?.bridge.name ?? 'cni0'));
  const names = [desired?.bridge.name ?? 'cni0', ...(desired?.vxlan ? [desired.vxlan.name] : []), ...(input ? [input.underlay.ifname] : [])];
  const keys = [['net', 'ipv4', 'ip_forward'], ['net', 'ipv4', 'conf', 'all', 'rp_filter'], ...names.map((n) => ['net', 'ipv4', 'conf', n, 'rp_filter']), ...['iptables', 'ip6tables', 'arptables'].map((k) => ['net', 'bridge', `bridge-nf-call-${k}`])];
  let outOfSync: string[] | undefined;
  let outOfSyncError: string | undefined;
  try {
    outOfSync = deps.agent.outOfSync();
  } catch (e) {
    outOfSyncError = (e as Error).message;
  }
  return {
    node: deps.nodeName,
    ...(deps.agent.state.podCidr ? { podCidr: deps.agent.state.podCidr } : {}),
    sysctls: Object.fromEntries(keys.map((k) => [k.join('.'), readSysctl(k)])),
    ...(desired && input ? { desired: { bridge: desired.bridge.name, gatewayCidr: desired.bridge.gatewayCidr, podMtu: desired.podMtu, ...(desired.vxlan ? { vxlan: { name: desired.vxlan.name, mtu: desired.vxlan.mtu } } : {}), underlay: { ifname: input.underlay.ifname, mtu: input.underlay.mtu } } } : {}),
    links: links.filter((l) => names.includes(l.name)).map((l) => ({ name: l.name, mtu: l.mtu, ...(l.kind ? { kind: l.kind } : {}) })),
    bridgePorts: bridge ? links.filter((l) => l.masterIndex === bridge.index).map((l) => ({ name: l.name, mtu: l.mtu, ...(l.kind ? { kind: l.kind } : {}) })) : [],
    bridgeAddrs: bridge ? deps.handle.addrList({ ifindex: bridge.index }).filter((a) => !a.cidr.includes(':')).map((a) => a.cidr) : [],
    ...(outOfSync ? { outOfSync } : {}),
    ...(outOfSyncError ? { outOfSyncError } : {}),
    ...(() => { const nft = nftFacts(deps, runner, desired); return nft ? { nft } : {}; })(),
    cni: readCniConf(deps.cniConfDir),
    // A reservation is live while a pod of this node holds it, even one left outside a podCIDR
    // that changed since (its veth is here): the range is the cluster CIDR, not the podCIDR.
    ipamOrphans: ipamOrphans(deps.ipamDataDir, now, (ip) => findPodNetns({ ip, node: deps.handle, ...(input ? { podCidr: input.clusterCidr } : {}) }) !== undefined),
    ...(() => { const dns = dnsFacts(deps, runner); return dns ? { dns } : {}; })(),
    ...(() => { const ipvs = ipvsFacts(deps); return ipvs ? { ipvs } : {}; })(),
  };
}

export interface DoctorAnswer {
  node: string;
  podCidr?: string;
  findings: Finding[];
  facts: DoctorFacts;
}

export function registerDoctorRoutes(app: FastifyInstance, deps: DoctorRouteDeps): void {
  app.get('/v1/debug/doctor', async (): Promise<DoctorAnswer> => {
    const facts = gatherDoctorFacts(deps);
    return { node: deps.nodeName, ...(facts.podCidr ? { podCidr: facts.podCidr } : {}), findings: doctorChecks(facts), facts };
  });
}
