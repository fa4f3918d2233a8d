// bench ipvs's worker, run inside the bench's node netns (ip netns exec): the IPVS mode's backend
// (src/proxy/ipvs) against the real kernel. `measure N CHANGES`: removes what is there, times a
// full sync of N ClusterIP services × 5 endpoints from nothing (whole sync, and the IPVS part of
// it), then CHANGES one-endpoint partial syncs, and leaves the rules in place for the latency
// runs. `restore-file N PATH`: writes the same services as an `ipvsadm -R` file. `remove`: clears.
// One JSON line on stdout.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execRunner } from '../src/exec/runner.js';
import { Handle } from '../src/netlink/handle.js';
import { IpvsProxyBackend } from '../src/proxy/ipvs/backend.js';
import { planIpvs } from '../src/proxy/ipvs/plan.js';
import type { IpvsKernel } from '../src/proxy/ipvs/kernel.js';
import type { ProxyInput, ServicePortEndpoints } from '../src/proxy/types.js';
import { RealIpvsKernel, fileOwnership } from '../src/agent/ipvs-kernel.js';

export const BENCH_NET = {
  clusterCidr: '10.99.0.0/16',
  nodeIp: '10.99.0.1',
  endpoints: ['10.99.1.2', '10.99.1.3', '10.99.1.4', '10.99.1.5', '10.99.1.6'],
  altEndpoint: '10.99.1.7',
  port: 8080,
};

/** The i-th service's ClusterIP: 10.96.0.0/16 from 10.96.0.10 on. */
export function clusterIp(i: number): string {
  const n = 10 + i;
  return `10.96.${n >> 8}.${n & 255}`;
}

export function benchInput(n: number, changed?: { index: number; round: number }): ProxyInput {
  const ports: ServicePortEndpoints[] = [];
  for (let i = 0; i < n; i++) {
    const ips = changed && changed.index === i && changed.round % 2 === 1 ? [...BENCH_NET.endpoints.slice(1), BENCH_NET.altEndpoint] : BENCH_NET.endpoints;
    const eps = ips.map((ip) => ({ ip, port: BENCH_NET.port, nodeName: 'srv', isLocal: false, ready: true, serving: true, terminating: false }));
    ports.push({
      svc: {
        key: `bench/svc-${i}:http/TCP`, namespace: 'bench', name: `svc-${i}`, portName: 'http', protocol: 'TCP', type: 'ClusterIP',
        clusterIPs: [clusterIp(i)], port: 80, externalIPs: [], loadBalancerIPs: [], externalPolicyLocal: false, internalPolicyLocal: false,
      },
      internalEndpoints: eps, externalEndpoints: eps, allEndpoints: eps,
    });
  }
  return { nodeName: 'node', nodeIPs: [BENCH_NET.nodeIp], clusterCidrs: [BENCH_NET.clusterCidr], ports };
}

/** The same services as `ipvsadm -R` input (what `ipvsadm -S -n` would save). */
export function restoreText(n: number): string {
  const lines: string[] = [];
  for (const s of planIpvs(benchInput(n)).services) {
    lines.push(`-A -t ${s.address}:${s.port} -s ${s.scheduler}`);
    for (const d of s.dests) lines.push(`-a -t ${s.address}:${s.port} -r ${d.address}:${d.port} -m -w ${d.weight}`);
  }
  return lines.join('\n') + '\n';
}

/** Time spent in the kernel's IPVS changes (apply) and address binding, apart from the rest of a sync. */
class TimedKernel implements IpvsKernel {
  ipvsMs = 0;
  bindMs = 0;
  ops = 0;
  constructor(private readonly k: IpvsKernel) {}
  present() { return this.k.present(); }
  prepare(s: string) { this.k.prepare(s); }
  listServices() { return this.k.listServices(); }
  apply(op: Parameters<IpvsKernel['apply']>[0]) {
    const t0 = performance.now();
    this.k.apply(op);
    this.ipvsMs += performance.now() - t0;
    this.ops++;
  }
  applyAll(ops: Parameters<IpvsKernel['applyAll']>[0]) {
    const t0 = performance.now();
    this.k.applyAll(ops);
    this.ipvsMs += performance.now() - t0;
    this.ops += ops.length;
  }
  boundAddresses() { return this.k.boundAddresses(); }
  bind(ips: readonly string[]) {
    const t0 = performance.now();
    this.k.bind(ips);
    this.bindMs += performance.now() - t0;
  }
  unbind(ips: readonly string[]) { this.k.unbind(ips); }
  removeDevice() { this.k.removeDevice(); }
  reset() { this.ipvsMs = 0; this.bindMs = 0; this.ops = 0; }
}

const round1 = (x: number) => Math.round(x * 10) / 10;

function main(argv: string[]): void {
  const [cmd, nText, changesText] = argv;
  const n = Number(nText ?? 0);
  if (cmd === 'restore-file') {
    fs.writeFileSync(changesText!, restoreText(n));
    process.stdout.write(JSON.stringify({ ok: true }) + '\n');
    return;
  }
  const handle = Handle.open();
  const real = new RealIpvsKernel(handle, execRunner);
  const kernel = new TimedKernel(real);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pw-ipvsbench-'));
  const backend = new IpvsProxyBackend(kernel, execRunner, fileOwnership(path.join(dir, 'owned.json')));
  try {
    if (cmd === 'remove') {
      backend.remove();
      process.stdout.write(JSON.stringify({ ok: true }) + '\n');
      return;
    }
    if (cmd !== 'measure') throw new Error(`ipvs-child: unknown command ${JSON.stringify(cmd)}`);
    // From nothing: what a node's first sync after boot does (the kernel modules already loaded).
    real.prepare('rr');
    backend.remove();
    real.prepare('rr');
    const input = benchInput(n);
    kernel.reset();
    const full = backend.sync(input, undefined);
    const fullIpvs = { ms: kernel.ipvsMs, ops: kernel.ops, bindMs: kernel.bindMs };
    const changes: { ms: number; ipvsMs: number; ops: number }[] = [];
    const index = Math.floor(n / 2);
    for (let round = 1; round <= Number(changesText ?? 5); round++) {
      kernel.reset();
      const r = backend.sync(benchInput(n, { index, round }), new Set([`bench/svc-${index}:http/TCP`]));
      if (r.scope !== 'partial') throw new Error(`change ${round}: a ${r.scope} sync, not a partial one`);
      changes.push({ ms: r.ms, ipvsMs: round1(kernel.ipvsMs), ops: kernel.ops });
    }
    // Back to the plain set (the last change may have left the alternative endpoint in).
    backend.sync(input, new Set([`bench/svc-${index}:http/TCP`]));
    const services = real.listServices().length;
    process.stdout.write(JSON.stringify({ n, fullMs: full.ms, fullBytes: full.bytes, fullIpvsMs: round1(fullIpvs.ms), fullIpvsOps: fullIpvs.ops, bindMs: round1(fullIpvs.bindMs), changes, services }) + '\n');
  } finally {
    real.close();
    handle.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname)) main(process.argv.slice(2));
