// What each proxy mode leaves in a node netns, read from the kernel independently of src/proxy:
// the end-to-end suite's check 0 (and a mode switch) looks for the other modes' objects, which
// must all be gone. nftables: svc-/ep-/aff- chains and sets in table inet podwire; iptables: the
// PODWIRE-* chains; ipvs: the ipvs- chains, maps and sets in inet podwire, the dummy device
// podwire-ipvs0 and IPVS virtual services (in a lab node every virtual service but the ones a
// test seeded as foreign is ours).
import fs from 'node:fs';
import { PROXY_MODES, type ProxyMode } from '../../src/proxy/backend.js';
import { inNetns } from './proxy-e2e.js';
import { nftView } from './proxy-e2e-nft.js';
import { iptView, ownedChains } from './proxy-e2e-iptables.js';

export const IPVS_DEVICE = 'podwire-ipvs0';

/** `ipvsadm -S -n` lines of the virtual services ("-A -t 10.96.0.10:80 -s rr"), [] when the kernel has no IPVS loaded. */
export function ipvsVirtualServices(netns: string): string[] {
  // /proc/net/ip_vs exists (in every netns) once ip_vs is loaded; without it nothing can be there
  // and ipvsadm would try to load the module.
  if (!fs.existsSync('/proc/net/ip_vs')) return [];
  return inNetns(netns, 'ipvsadm', ['-S', '-n']).split('\n').filter((l) => l.startsWith('-A '));
}

export function hasLink(netns: string, name: string): boolean {
  const links = JSON.parse(inNetns(netns, 'ip', ['-j', 'link', 'show']) || '[]') as { ifname: string }[];
  return links.some((l) => l.ifname === name);
}

/** The objects `mode` has in the netns, as "what: name" (empty: none). `foreignVs`: virtual service lines that are not ours. */
export function modeObjects(mode: ProxyMode, netns: string, foreignVs: readonly string[] = []): string[] {
  switch (mode) {
    case 'nftables': {
      const v = nftView(netns);
      return [...v.chains.keys(), ...v.sets.keys(), ...v.maps.keys()].filter((n) => /^(svc|ep|aff)-/.test(n)).map((n) => `nft inet podwire: ${n}`);
    }
    case 'iptables':
      return Object.entries(ownedChains(iptView(netns))).flatMap(([table, chains]) => chains.map((ch) => `iptables -t ${table}: ${ch}`));
    case 'ipvs': {
      const v = nftView(netns);
      const nft = [...v.chains.keys(), ...v.sets.keys(), ...v.maps.keys()].filter((n) => n.startsWith('ipvs-')).map((n) => `nft inet podwire: ${n}`);
      const dev = hasLink(netns, IPVS_DEVICE) ? [`link ${IPVS_DEVICE}`] : [];
      const vs = ipvsVirtualServices(netns).filter((l) => !foreignVs.includes(l)).map((l) => `ipvs: ${l}`);
      return [...nft, ...dev, ...vs];
    }
  }
}

/** The objects of every mode but `mode` in the netns (check 0 and mode switches: none). */
export function otherModesObjects(mode: ProxyMode, netns: string, foreignVs: readonly string[] = []): string[] {
  return PROXY_MODES.filter((m) => m !== mode).flatMap((m) => modeObjects(m, netns, foreignVs));
}
