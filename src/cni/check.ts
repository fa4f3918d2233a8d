// CHECK (SPEC.md): the attachment still matches prevResult: pod interface (MAC, up), its addresses and
// routes, the host veth on the bridge and paired with it, the gateway address, IPAM and masquerade.
// The first mismatch is reported precisely.
import { Handle } from '../netlink/handle.js';
import type { NetConf } from './config.js';
import type { CniEnv } from './env.js';
import { CniError, CNI_ERR } from './errors.js';
import { ipOf, openPodNetns, prefixOf } from './host.js';
import { ipamClient } from './ipam-client.js';
import { masqCheckFor } from './masq-ops.js';
import { hostVethName } from './names.js';
import type { Result } from './result.js';

const drift = (msg: string, details = 'the attachment drifted from its ADD result: DEL and ADD it again') =>
  new CniError(CNI_ERR.CHECK_FAILED, msg, details);

function checkPod(pod: Handle, env: CniEnv, prev: Result): number {
  const link = pod.linkFind(env.ifname);
  if (!link) throw drift(`interface ${env.ifname} is missing in ${env.netns}`);
  const sandbox = prev.interfaces.find((i) => i.name === env.ifname && i.sandbox);
  if (!sandbox) throw drift(`prevResult has no interface ${env.ifname} with a sandbox`, 'the runtime must pass the ADD result of this attachment');
  if (sandbox.mac && link.mac !== sandbox.mac.toLowerCase()) throw drift(`interface ${env.ifname} has MAC ${link.mac}, prevResult says ${sandbox.mac}`);
  if (!link.up) throw drift(`interface ${env.ifname} in ${env.netns} is down`);
  const index = prev.interfaces.indexOf(sandbox);
  const have = new Set(pod.addrList({ ifindex: link.index }).map((a) => a.cidr));
  for (const ip of prev.ips.filter((i) => i.interface === index)) {
    if (!have.has(ip.address)) throw drift(`address ${ip.address} is missing on ${env.ifname} in ${env.netns}`);
  }
  const routes = [4, 6].flatMap((family) => pod.routeList({ family: family as 4 | 6 }));
  for (const r of prev.routes) {
    const dst = r.dst;
    const ok = routes.some((k) => k.dst === dst && (!r.gw || k.gateway === r.gw));
    if (!ok) throw drift(`route ${dst}${r.gw ? ` via ${r.gw}` : ''} is missing in ${env.netns}`);
  }
  return link.index;
}

function checkHost(host: Handle, conf: NetConf, env: CniEnv, prev: Result, podIndex: number): void {
  const name = hostVethName(env.containerId, env.ifname);
  const veth = host.linkFind(name);
  if (!veth) throw drift(`host veth ${name} of container ${env.containerId} is missing`);
  const br = host.linkFind(conf.bridge);
  if (!br) throw drift(`bridge ${conf.bridge} is missing`);
  if (veth.masterIndex !== br.index) throw drift(`host veth ${name} is not attached to bridge ${conf.bridge}`);
  // IFLA_LINK equal to the link's own index is not reported as linkIndex; in two netns it can be.
  if ((veth.linkIndex ?? veth.index) !== podIndex) throw drift(`host veth ${name} is not the peer of ${env.ifname} in ${env.netns}`);
  if (conf.hairpinMode && veth.bridgePort && !veth.bridgePort.hairpin) throw drift(`hairpin mode is off on ${name}`);
  if (conf.isGateway) {
    const have = new Set(host.addrList({ ifindex: br.index }).map((a) => a.cidr));
    for (const ip of prev.ips) {
      if (ip.gateway && !have.has(`${ip.gateway}/${prefixOf(ip.address)}`)) throw drift(`gateway ${ip.gateway}/${prefixOf(ip.address)} is missing on bridge ${conf.bridge}`);
    }
  }
}

export function cmdCheck(env: CniEnv, conf: NetConf): void {
  const prev = conf.prevResult;
  if (!prev) throw new CniError(CNI_ERR.INVALID_CONFIG, 'CHECK needs prevResult', 'the runtime must pass the cached ADD result as prevResult');
  const podNs = openPodNetns(env.netns);
  const pod = Handle.open({ netns: podNs });
  const host = Handle.open();
  try {
    const podIndex = checkPod(pod, env, prev);
    checkHost(host, conf, env, prev, podIndex);
  } finally {
    pod.close();
    host.close();
    podNs.close();
  }
  ipamClient(conf, env).check(prev.ips.map((ip) => ipOf(ip.address)));
  if (conf.ipMasq) masqCheckFor(conf, env, prev.ips.map((ip) => ip.address));
}
