// ADD (SPEC.md): veth pair with the container end created straight into the pod netns as CNI_IFNAME,
// host end on the bridge, address and routes in the pod, optional masquerade. Every step pushes its
// undo; any failure unwinds them in reverse, so a failed ADD leaves nothing behind.
import { Handle } from '../netlink/handle.js';
import type { Link } from '../netlink/link.js';
import type { NetConf } from './config.js';
import type { CniEnv } from './env.js';
import { asCniError, CniError, CNI_ERR } from './errors.js';
import { ensureBridge, ensureForwarding, ensureGatewayAddress, familyOfIp, ipOf, openPodNetns, prefixOf } from './host.js';
import { ipamClient, type IpamResult } from './ipam-client.js';
import { masqAddFor } from './masq-ops.js';
import { hostVethName } from './names.js';
import type { Result, ResultRoute } from './result.js';
import { clusterFirstDns, podNamespace } from './cluster-dns.js';

type Undo = { what: string; run: () => void };

/** Routes for the pod: IPAM's, each without gw taking the gateway of its family, plus the default. */
export function podRoutes(conf: NetConf, ipr: IpamResult): ResultRoute[] {
  const gwOf = (family: 4 | 6) => ipr.ips.find((ip) => familyOfIp(ipOf(ip.address)) === family && ip.gateway)?.gateway;
  const routes: ResultRoute[] = ipr.routes.map((r) => ({ ...r }));
  if (conf.isDefaultGateway) {
    for (const family of [4, 6] as const) {
      const gw = gwOf(family);
      const dst = family === 4 ? '0.0.0.0/0' : '::/0';
      if (gw && !routes.some((r) => r.dst === dst)) routes.push({ dst, gw });
    }
  }
  return routes.map((r) => (r.gw || !gwOf(familyOfIp(ipOf(r.dst))) ? r : { ...r, gw: gwOf(familyOfIp(ipOf(r.dst))) }));
}

function unwind(undo: Undo[], err: unknown): never {
  const failures: string[] = [];
  for (const step of undo.reverse()) {
    try {
      step.run();
    } catch (e) {
      failures.push(`${step.what}: ${(e as Error).message}`);
    }
  }
  const cni = asCniError(err);
  if (failures.length) {
    throw new CniError(cni.code, cni.message, [cni.details, `cleanup after the failure also failed (run DEL): ${failures.join('; ')}`].filter(Boolean).join('; '));
  }
  throw cni;
}

/** The result's dns: the config's explicit dns (CNI spec), else the cluster's for the pod's namespace, else IPAM's. */
export function resultDns(conf: NetConf, env: Pick<CniEnv, 'args'>, ipamDns: Record<string, unknown>): Record<string, unknown> {
  if (conf.dns && Object.keys(conf.dns).length) return conf.dns;
  if (conf.clusterDns) return { ...clusterFirstDns(conf.clusterDns, podNamespace(env.args)) };
  return ipamDns;
}

export function cmdAdd(env: CniEnv, conf: NetConf): Result {
  // Checked before anything is touched (a bad K8S_POD_NAMESPACE is error 4).
  if (conf.clusterDns) resultDns(conf, env, {});
  const podNs = openPodNetns(env.netns);
  const host = Handle.open();
  let pod: Handle | undefined;
  const undo: Undo[] = [];
  try {
    pod = Handle.open({ netns: podNs });
    checkNoInterface(pod, env);
    // IPAM first: a config problem it finds (e.g. a delegate missing from CNI_PATH, an exhausted
    // range) must fail the ADD before the node is touched at all.
    const ipr = allocateIps(conf, env, undo);
    // Never removed by the undo: other pods' ADDs may already use it.
    const bridge = ensureBridge(host, conf.bridge, conf.mtu);
    const hostName = addVeth(host, podNs, bridge.index, env, conf, undo);
    if (conf.isGateway) ensureGateways(host, bridge.index, ipr);
    const podIf = pod.linkGet(env.ifname);
    const routes = configurePodInterface(pod, podIf.index, conf, ipr);
    if (conf.ipMasq) {
      for (const ip of ipr.ips) undo.push(masqAddFor(conf, env, ip.address));
    }
    return resultOf(env, conf, ipr, { bridge: host.linkGet(bridge.index), hostVeth: host.linkGet(hostName), podIf }, routes);
  } catch (err) {
    return unwind(undo, err);
  } finally {
    pod?.close();
    host.close();
    podNs.close();
  }
}

function checkNoInterface(pod: Handle, env: CniEnv): void {
  if (pod.linkFind(env.ifname)) {
    throw new CniError(CNI_ERR.KERNEL, `container ${env.containerId} already has an interface ${env.ifname} in ${env.netns}`,
      'ADD was already done for this attachment: run DEL first, or use another CNI_IFNAME');
  }
}

function allocateIps(conf: NetConf, env: CniEnv, undo: Undo[]): IpamResult {
  const ipam = ipamClient(conf, env);
  const ipr = ipam.add();
  undo.push({ what: 'release the IP', run: () => void ipam.del() });
  if (ipr.ips.length === 0) throw new CniError(CNI_ERR.IPAM_DELEGATE, `IPAM plugin ${conf.ipam.type} returned no IP address`);
  return ipr;
}

/** The veth pair, its pod end created straight into the pod netns as CNI_IFNAME, its host end up on the bridge. */
function addVeth(host: Handle, podNs: { fd: number }, bridgeIndex: number, env: CniEnv, conf: NetConf, undo: Undo[]): string {
  const hostName = hostVethName(env.containerId, env.ifname);
  // A host veth under this name is a leftover of an interrupted ADD of this very attachment.
  if (host.linkFind(hostName)) host.linkDel(hostName);
  host.linkAdd({ kind: 'veth', name: hostName, mtu: conf.mtu, peer: { name: env.ifname, mtu: conf.mtu, ...(conf.mac ? { mac: conf.mac } : {}), netnsFd: podNs.fd } });
  undo.push({ what: `delete veth ${hostName}`, run: () => host.linkFind(hostName) && host.linkDel(hostName) });
  host.linkSet(hostName, { masterIndex: bridgeIndex });
  if (conf.hairpinMode) host.linkSetBridgePort(hostName, { hairpin: true });
  host.linkSet(hostName, { up: true });
  return hostName;
}

/** The bridge holds each family's gateway address, and forwards that family. */
function ensureGateways(host: Handle, bridgeIndex: number, ipr: IpamResult): void {
  for (const ip of ipr.ips) {
    if (!ip.gateway) continue;
    ensureGatewayAddress(host, bridgeIndex, ip.gateway, prefixOf(ip.address));
    ensureForwarding(familyOfIp(ip.gateway));
  }
}

function configurePodInterface(pod: Handle, ifindex: number, conf: NetConf, ipr: IpamResult): ResultRoute[] {
  // IPv6 addresses skip DAD (IFA_F_NODAD): a tentative address would drop the pod's first packets,
  // and IPAM already made it unique.
  for (const ip of ipr.ips) pod.addrAdd({ ifindex, cidr: ip.address, ...(ip.address.includes(':') ? { flags: 0x02 } : {}) });
  pod.linkSet(ifindex, { up: true });
  const routes = podRoutes(conf, ipr);
  for (const r of routes) pod.routeAdd({ dst: r.dst, ...(r.gw ? { gateway: r.gw } : {}), ifindex });
  return routes;
}

/** The spec's result: interfaces bridge, host veth, pod interface (index 2, which every IP names). */
function resultOf(env: CniEnv, conf: NetConf, ipr: IpamResult, { bridge, hostVeth, podIf }: { bridge: Link; hostVeth: Link; podIf: Link }, routes: ResultRoute[]): Result {
  return {
    interfaces: [
      { name: bridge.name, ...(bridge.mac ? { mac: bridge.mac } : {}) },
      { name: hostVeth.name, ...(hostVeth.mac ? { mac: hostVeth.mac } : {}) },
      { name: env.ifname, ...(podIf.mac ? { mac: podIf.mac } : {}), mtu: podIf.mtu, sandbox: env.netns },
    ],
    ips: ipr.ips.map((ip) => ({ ...ip, interface: 2 })),
    routes,
    dns: resultDns(conf, env, ipr.dns),
  };
}
