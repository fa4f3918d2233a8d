import t from 'tap';
import { servicePortEndpoints, usableEndpoints } from '../../src/proxy/topology.js';
import type { EndpointInfo, ServicePortInfo } from '../../src/proxy/types.js';

const svc: ServicePortInfo = {
  key: 'default/web:http/TCP',
  namespace: 'default',
  name: 'web',
  portName: 'http',
  protocol: 'TCP',
  type: 'NodePort',
  clusterIPs: ['10.96.0.10'],
  port: 80,
  nodePort: 30080,
  externalIPs: [],
  loadBalancerIPs: [],
  externalPolicyLocal: false,
  internalPolicyLocal: false,
};

type State = 'ready' | 'notReady' | 'terminating' | 'terminatingNotServing';

/** "L1" = local endpoint 10.244.1.1; "R2" = remote endpoint 10.244.2.2; state suffix after ':' (default ready). */
function ep(spec: string): EndpointInfo {
  const [where, state = 'ready'] = spec.split(':') as [string, State?];
  const local = where[0] === 'L';
  return {
    ip: `10.244.${local ? 1 : 2}.${where.slice(1)}`,
    port: 8080,
    nodeName: local ? 'node-1' : 'node-2',
    isLocal: local,
    ready: state === 'ready',
    serving: state === 'ready' || state === 'terminating',
    terminating: state === 'terminating' || state === 'terminatingNotServing',
  };
}

const names = (eps: EndpointInfo[]): string[] => eps.map((e) => `${e.isLocal ? 'L' : 'R'}${e.ip.split('.')[3]}`);

interface Case {
  name: string;
  eps: string[];
  internalLocal?: boolean;
  externalLocal?: boolean;
  internal: string[];
  external: string[];
  all: string[];
}

const cases: Case[] = [
  { name: 'all ready', eps: ['L1', 'R2', 'R3'], internal: ['L1', 'R2', 'R3'], external: ['L1', 'R2', 'R3'], all: ['L1', 'R2', 'R3'] },
  { name: 'not-ready endpoints are left out', eps: ['L1:notReady', 'R2', 'R3:terminating'], internal: ['R2'], external: ['R2'], all: ['R2'] },
  { name: 'none ready: serving-terminating fallback', eps: ['L1:terminating', 'R2:notReady', 'R3:terminating', 'R4:terminatingNotServing'],
    internal: ['L1', 'R3'], external: ['L1', 'R3'], all: ['L1', 'R3'] },
  { name: 'none ready, none serving: no endpoints', eps: ['L1:notReady', 'R2:terminatingNotServing'], internal: [], external: [], all: [] },
  { name: 'no endpoints at all', eps: [], internal: [], external: [], all: [] },
  { name: 'no endpoints, Local policies', eps: [], internalLocal: true, externalLocal: true, internal: [], external: [], all: [] },
  { name: 'internal Local with a local endpoint', eps: ['L1', 'R2'], internalLocal: true, internal: ['L1'], external: ['L1', 'R2'], all: ['L1', 'R2'] },
  { name: 'internal Local without a local endpoint: drop, not reject', eps: ['R2', 'R3'], internalLocal: true, internal: [], external: ['R2', 'R3'], all: ['R2', 'R3'] },
  { name: 'external Local with a local endpoint', eps: ['L1', 'L2', 'R3'], externalLocal: true, internal: ['L1', 'L2', 'R3'], external: ['L1', 'L2'], all: ['L1', 'L2', 'R3'] },
  { name: 'external Local without a local endpoint: drop, not reject', eps: ['L1:notReady', 'R2'], externalLocal: true, internal: ['R2'], external: [], all: ['R2'] },
  { name: 'both Local, local ready', eps: ['L1', 'R2'], internalLocal: true, externalLocal: true, internal: ['L1'], external: ['L1'], all: ['L1', 'R2'] },
  { name: 'Local: local terminating while remote ready (independent fallback)', eps: ['L1:terminating', 'R2'], externalLocal: true,
    internal: ['R2'], external: ['L1'], all: ['L1', 'R2'] },
  { name: 'Local: local ready wins over local terminating', eps: ['L1:terminating', 'L2', 'R3'], internalLocal: true, internal: ['L2'], external: ['L2', 'R3'], all: ['L2', 'R3'] },
  { name: 'Local: nothing usable locally, remote only terminating', eps: ['L1:notReady', 'R2:terminating'], internalLocal: true, externalLocal: true,
    internal: [], external: [], all: ['R2'] },
];

t.test('servicePortEndpoints: CategorizeEndpoints table', async (t) => {
  for (const c of cases) {
    const port = { ...svc, internalPolicyLocal: c.internalLocal ?? false, externalPolicyLocal: c.externalLocal ?? false };
    const got = servicePortEndpoints(port, c.eps.map(ep));
    t.same(
      { internal: names(got.internalEndpoints), external: names(got.externalEndpoints), all: names(got.allEndpoints) },
      { internal: c.internal, external: c.external, all: c.all },
      c.name,
    );
    t.equal(got.svc, port, `${c.name}: the service port is carried as is`);
  }
});

t.test('the two renderer outcomes and their invariants', async (t) => {
  for (const c of cases) {
    const port = { ...svc, internalPolicyLocal: c.internalLocal ?? false, externalPolicyLocal: c.externalLocal ?? false };
    const got = servicePortEndpoints(port, c.eps.map(ep));
    const all = new Set(got.allEndpoints);
    t.ok([...got.internalEndpoints, ...got.externalEndpoints].every((e) => all.has(e)), `${c.name}: every used endpoint is in allEndpoints`);
    if (got.allEndpoints.length === 0) t.same([got.internalEndpoints, got.externalEndpoints], [[], []], `${c.name}: reject means nothing anywhere`);
  }
});

t.test('usableEndpoints keeps input order', async (t) => {
  t.same(names(usableEndpoints(['R9', 'L1', 'R2'].map(ep))), ['R9', 'L1', 'R2']);
  t.same(names(usableEndpoints(['R9:terminating', 'L1:notReady', 'R2:terminating'].map(ep))), ['R9', 'R2']);
});
