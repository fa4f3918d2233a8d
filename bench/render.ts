// The nftables renderer alone (pure: no root, no netns): N services × E endpoints each, endpoint
// IPs in shuffled order, so the endpoint sort keys (port-view.ts) and the render's own IP sorts do real
// work. Reports the median of R runs for the validated port views (portViews), the whole IR
// (renderProxyIR), the full sync's `nft -f` text (renderScript of the whole IR) and a one-service
// partial sync (the incremental state's update plus its diff). A quick check that IP parsing,
// sort keys and the transaction rendering keep their speed at 10k services.
import type { FlagSpecs, Flags } from '../src/flags/flags.js';
import { portViews, renderProxyIR } from '../src/proxy/nft/render.js';
import { renderScript } from '../src/proxy/nft/diff.js';
import { NftRenderState } from '../src/proxy/nft/incremental.js';
import type { EndpointInfo, ProxyInput, ServicePortEndpoints } from '../src/proxy/types.js';
import { machine, table } from './util.js';

export const summary = 'nftables renderer at N services x E endpoints (pure, no root): port views, full IR and sync transactions, medians';

export const flags: FlagSpecs = {
  services: { type: 'int', default: 10_000, min: 1, max: 100_000, help: 'service ports' },
  endpoints: { type: 'int', default: 10, min: 1, max: 100, help: 'endpoints per service' },
  repeat: { type: 'int', default: 5, min: 1, max: 100, help: 'runs (median reported)' },
};

function seeded(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

export function renderInput(services: number, perService: number): ProxyInput {
  const random = seeded(services * 131 + perService);
  const ports: ServicePortEndpoints[] = [];
  for (let i = 0; i < services; i++) {
    const eps: EndpointInfo[] = [];
    for (let j = 0; j < perService; j++) {
      const n = Math.floor(random() * 0xffffff);
      eps.push({ ip: `10.${n >> 16}.${(n >> 8) & 255}.${n & 255}`, port: 8080, nodeName: `node-${j % 3}`, isLocal: j % 3 === 0, ready: true, serving: true, terminating: false });
    }
    ports.push({
      svc: {
        key: `default/s${i}:http/TCP`, namespace: 'default', name: `s${i}`, portName: 'http', protocol: 'TCP', type: i < 2000 ? 'NodePort' : 'ClusterIP',
        clusterIPs: [`10.96.${i >> 8}.${i & 255}`], port: 80, nodePort: i < 2000 ? 30000 + i : undefined, externalIPs: [], loadBalancerIPs: [],
        externalPolicyLocal: false, internalPolicyLocal: false,
      },
      internalEndpoints: eps, externalEndpoints: eps, allEndpoints: eps,
    });
  }
  return { nodeName: 'node-0', nodeIPs: ['192.168.56.10'], clusterCidrs: ['10.244.0.0/16'], ports } as ProxyInput;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function time(fn: () => unknown): number {
  const start = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - start) / 1e6;
}

export async function run(f: Flags): Promise<void> {
  const [services, perService, repeat] = [f.services as number, f.endpoints as number, f.repeat as number];
  const input = renderInput(services, perService);
  renderProxyIR(input); // warm-up: JIT and inline caches
  const views: number[] = [];
  const full: number[] = [];
  const script: number[] = [];
  const partial: number[] = [];
  const ir = renderProxyIR(input);
  const state = NftRenderState.build(input);
  const key = input.ports[Math.floor(services / 2)]!.svc.key;
  for (let i = 0; i < repeat; i++) {
    views.push(time(() => portViews(input)));
    full.push(time(() => renderProxyIR(input)));
    script.push(time(() => renderScript(undefined, ir)));
    // one service's endpoints changed and back: each step a re-render of it and a small diff
    const moved = { ...input, ports: input.ports.map((p) => (p.svc.key === key ? { ...p, allEndpoints: p.allEndpoints.slice(1), internalEndpoints: p.internalEndpoints.slice(1), externalEndpoints: p.externalEndpoints.slice(1) } : p)) };
    const target = i % 2 === 0 ? moved : input;
    partial.push(time(() => {
      const step = state.update(target, new Set([key]));
      if (step) renderScript(step.prev, step.next);
    }));
  }
  process.stdout.write(`render: ${services} services x ${perService} endpoints, ${repeat} runs; ${machine()}\n`);
  process.stdout.write(table([
    ['step', 'median ms', 'min ms', 'max ms'],
    ['portViews (validate + endpoint sort)', ...[median(views), Math.min(...views), Math.max(...views)].map((x) => x.toFixed(1))],
    ['renderProxyIR (whole IR)', ...[median(full), Math.min(...full), Math.max(...full)].map((x) => x.toFixed(1))],
    ['renderScript (full sync text)', ...[median(script), Math.min(...script), Math.max(...script)].map((x) => x.toFixed(1))],
    ['partial sync of one service (update + diff)', ...[median(partial), Math.min(...partial), Math.max(...partial)].map((x) => x.toFixed(2))],
  ]) + '\n');
}
