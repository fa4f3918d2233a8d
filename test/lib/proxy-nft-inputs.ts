// Inputs for the nftables renderer's tests (unit: test/unit/proxy-nft-render.test.ts; against the
// kernel: test/integration/proxy-nft-kernel.test.ts): a small cluster of nodes a, b, c with five
// services, their renders (A, B, C) and the sequence of changes the convergence tests walk.
import { endpoints, service, type EndpointSpec } from './proxy-fixtures.js';
import type { ProxyInput, ServicePortInfo, ServicePortEndpoints } from '../../src/proxy/types.js';
import { renderProxyIR, type NftIR, type RenderOptions } from '../../src/proxy/nft/render.js';
import { renderScript } from '../../src/proxy/nft/diff.js';

// ---------------------------------------------------------------------------------------------
// a small cluster: nodes a, b, c; this node is a unless said otherwise

export const NODE_IP: Record<string, string> = { 'node-a': '192.168.56.10', 'node-b': '192.168.56.11', 'node-c': '192.168.56.12' };
export const CLUSTER_CIDR = '10.244.0.0/16';
export const OUTSIDE = '192.168.56.1';
export const POD_A = '10.244.1.7';

/** topology.ts in miniature: the endpoint lists a node uses for one service port. */
export function portEndpoints(info: ServicePortInfo, list: EndpointSpec[], node: string): ServicePortEndpoints {
  const all = list.map((e) => ({ ...e, isLocal: e.nodeName === node }));
  const local = all.filter((e) => e.isLocal);
  return { svc: info, allEndpoints: all, internalEndpoints: info.internalPolicyLocal ? local : all, externalEndpoints: info.externalPolicyLocal ? local : all };
}

export const THREE = endpoints(['10.244.1.5@node-a', '10.244.2.5@node-b', '10.244.3.5@node-c']);
export const SERVICES = {
  web: () => [service('web', { clusterIPs: ['10.96.0.10', 'fd00:96::10'] }), THREE] as const,
  shop: () => [service('shop', {
    type: 'LoadBalancer', clusterIPs: ['10.96.0.20'], nodePort: 30080, externalIPs: ['192.0.2.10'], loadBalancerIPs: ['198.51.100.10'],
  }), THREE] as const,
  sticky: () => [service('sticky', { portName: '', clusterIPs: ['10.96.0.30'], sessionAffinity: { timeoutSeconds: 10800 } }),
    endpoints(['10.244.1.6@node-a', '10.244.2.6@node-b'])] as const,
  local: () => [service('local', {
    type: 'NodePort', protocol: 'UDP', clusterIPs: ['10.96.0.40'], port: 53, nodePort: 30053, externalIPs: ['192.0.2.40'], externalPolicyLocal: true,
  }), endpoints(['10.244.1.8@node-a', '10.244.2.8@node-b'], 5353)] as const,
  empty: () => [service('empty', { type: 'NodePort', clusterIPs: ['10.96.0.50'], nodePort: 30050 }), []] as const,
};
export type Name = keyof typeof SERVICES;

export function input(names: Name[], node = 'node-a', edit?: (n: Name, e: EndpointSpec[]) => EndpointSpec[]): ProxyInput {
  return {
    nodeName: node, nodeIPs: [NODE_IP[node], 'fd00::10', '127.0.0.1'], clusterCidrs: [CLUSTER_CIDR, 'fd00:10:244::/56'],
    ports: names.map((n) => {
      const [info, list] = SERVICES[n]();
      return portEndpoints(info, edit ? edit(n, [...list]) : [...list], node);
    }),
  };
}

export const ALL: Name[] = ['web', 'shop', 'sticky', 'local', 'empty'];
export const irA = renderProxyIR(input(ALL));
// (f) web's endpoint on node-b replaced (new pod IP); (g) then shop deleted
export const irB = renderProxyIR(input(ALL, 'node-a', (n, list) => (n === 'web' ? list.map((e) => (e.ip === '10.244.2.5' ? { ...e, ip: '10.244.2.9' } : e)) : list)));
export const irC = renderProxyIR({ ...input(ALL.filter((n) => n !== 'shop'), 'node-a', (n, list) => (n === 'web' ? list.map((e) => (e.ip === '10.244.2.5' ? { ...e, ip: '10.244.2.9' } : e)) : list)) });
export const GOLDEN_FULL: [string, Name, RenderOptions?][] = [
  ['clusterip', 'web'], ['clusterip-own-chain', 'web', { sharedPickMax: 0 }], ['clusterip-vmap', 'web', { numgenVmapMinEndpoints: 2, sharedPickMax: 0 }], ['nodeport-lb', 'shop'], ['affinity', 'sticky'], ['local-policy', 'local'], ['no-endpoints', 'empty'],
];
export const goldenFull = ([, name, opts]: [string, Name, RenderOptions?]) => renderScript(undefined, renderProxyIR(input([name]), opts));
/** A script with one element per `add|delete element` command (the renderer batches them). */
export const unbatch = (script: string): string =>
  script.replace(/^(add|delete) element (\S+ \S+ \S+) \{ (.*) \}$/gm, (_, verb: string, where: string, items: string) => items.split(', ').map((i) => `${verb} element ${where} { ${i} }`).join('\n'));
export const scriptF = unbatch(renderScript(irA, irB));
export const scriptG = unbatch(renderScript(irB, irC));

export const chainOf = (ir: NftIR, comment: string) => ir.chains.find((c) => c.comment === comment)!.name;

/** COUNT services, the first 2,000 NodePorts, two remote endpoints each. */
export const big = (count: number): ProxyInput => ({
  nodeName: 'node-a', nodeIPs: [NODE_IP['node-a']], clusterCidrs: [CLUSTER_CIDR],
  ports: Array.from({ length: count }, (_, i) => portEndpoints(
    service(`s${i}`, { type: i < 2000 ? 'NodePort' : 'ClusterIP', clusterIPs: [`10.96.${i >> 8}.${i & 255}`], nodePort: i < 2000 ? 30000 + i : undefined }),
    endpoints([`10.245.${i >> 8}.${i & 255}@node-b`, `10.246.${i >> 8}.${i & 255}@node-c`]), 'node-a')),
});

export const move = (from: string, to: string) => (list: EndpointSpec[]) => list.map((e) => (e.ip === from ? { ...e, ip: to } : e));
// (d) sticky's endpoint moved, local's local endpoint gone, empty gets endpoints, a second node IP; (e) local empty; (f) shop Local + affinity
export const inD: ProxyInput = {
  ...input(ALL, 'node-a', (n, list) => (n === 'sticky' ? move('10.244.2.6', '10.244.2.7')(list) : n === 'local' ? list.filter((e) => e.nodeName !== 'node-a') : n === 'empty' ? THREE : list)),
  nodeIPs: [NODE_IP['node-a'], '192.168.57.10'],
};
export const inE = input(ALL, 'node-a', (n, list) => (n === 'local' ? [] : list));
export const inF = input(ALL);
inF.ports = inF.ports.map((p) => (p.svc.name === 'shop' ? portEndpoints({ ...p.svc, externalPolicyLocal: true, sessionAffinity: { timeoutSeconds: 60 } }, THREE, 'node-a') : p));
export const inB = input(ALL, 'node-a', (n, list) => (n === 'web' ? list.map((e) => (e.ip === '10.244.2.5' ? { ...e, ip: '10.244.2.9' } : e)) : list));
export const inC = { ...inB, ports: inB.ports.filter((p) => p.svc.name !== 'shop') };
/** The inputs of the convergence tests, in order: every kind of change, and back. */
export const STEPS: [string, ProxyInput][] = [['A', input(ALL)], ['B', inB], ['C', inC], ['D', inD], ['E', inE], ['A again', input(ALL)], ['F (shop: Local + affinity)', inF], ['A once more', input(ALL)]];
export const changedKeys = (a: ProxyInput, b: ProxyInput): Set<string> => {
  const json = (i: ProxyInput) => new Map(i.ports.map((p) => [p.svc.key, JSON.stringify(p)]));
  const [x, y] = [json(a), json(b)];
  return new Set([...x.keys(), ...y.keys()].filter((k) => x.get(k) !== y.get(k)));
};
export const sortedLines = (script: string) => unbatch(script).split('\n').filter(Boolean).sort();
