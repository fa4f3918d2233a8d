// A cluster DNS server (src/dns) in a process of its own, for tests that run it inside a network
// namespace (`ip netns exec pw-... node dist/test/lib/dns-server-child.js`). The first line on
// stdin is the spec (JSON): {index?: {zone, ttl, negativeTtl, podRecords}, server: {listen,
// upstreams, ...DnsServerOptions numbers/booleans}, services?, endpoints?, pods?}. It answers one
// line, {"ready":true,"address":{host,port},"loops":[...],"upstreams":[...]} or {"error":"..."}
// (exit 1). Then each stdin line is one change, {"id":N,"op":"setService"|"deleteService"|
// "setEndpoints"|"deleteEndpoints"|"setPod"|"deletePod","object":{...}}, applied to a
// LiveDnsIndex and swapped in (answered {"id":N,"ok":true,"at":<ms>}), or {"id":N,"op":"stats"}
// (answered {"id":N,"stats":...,"loops":...,"upstreams":...}). Ends when stdin closes or its
// parent is gone. Log lines (JSON) on stderr.
import readline from 'node:readline';
import type { Endpoints, Pod, Service } from '../../src/api/objects.js';
import { LiveDnsIndex } from '../../src/dns/live-index.js';
import { POD_RECORDS_MODES, type DnsIndexOptions } from '../../src/dns/records.js';
import type { Upstream } from '../../src/dns/resolv-conf.js';
import { DnsServer, type DnsServerOptions } from '../../src/dns/server.js';
import { upstreamText } from '../../src/dns/forwarder.js';

type KubeKind = 'Service' | 'Endpoints' | 'Pod';
const OPS: Record<string, KubeKind> = {
  setService: 'Service', deleteService: 'Service', setEndpoints: 'Endpoints', deleteEndpoints: 'Endpoints', setPod: 'Pod', deletePod: 'Pod',
};
const NUMBER_OPTIONS = ['maxUdpSize', 'upstreamTimeoutMs', 'tcpIdleMs', 'maxTcpConnections', 'maxPipelined', 'maxForwarding', 'loopProbeTimeoutMs', 'logLines', 'logIntervalMs'] as const;

const say = (o: unknown): void => void process.stdout.write(`${JSON.stringify(o)}\n`);
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function upstream(v: unknown, what: string): Upstream {
  if (!isObject(v) || typeof v.host !== 'string' || !Number.isInteger(v.port) || (v.port as number) < 0 || (v.port as number) > 65535) {
    throw new Error(`${what}: want {"host": "<ip>", "port": 0-65535}, got ${JSON.stringify(v)}`);
  }
  return { host: v.host, port: v.port as number };
}

function kubeObject(v: unknown, kind: KubeKind, what: string): Service & Endpoints & Pod {
  if (!isObject(v) || v.kind !== kind || !isObject(v.metadata) || typeof v.metadata.name !== 'string') {
    throw new Error(`${what}: want a ${kind} with metadata.name, got ${JSON.stringify(v)?.slice(0, 200)}`);
  }
  return v as unknown as Service & Endpoints & Pod;
}

function list(v: unknown, kind: KubeKind, what: string): (Service & Endpoints & Pod)[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw new Error(`${what}: want an array of ${kind} objects`);
  return v.map((o, i) => kubeObject(o, kind, `${what}[${i}]`));
}

function indexOptions(v: unknown): Partial<DnsIndexOptions> {
  if (v === undefined) return {};
  if (!isObject(v)) throw new Error('spec.index: want an object');
  const o: Partial<DnsIndexOptions> = {};
  if (v.zone !== undefined) o.zone = String(v.zone);
  for (const k of ['ttl', 'negativeTtl'] as const) {
    if (v[k] === undefined) continue;
    if (!Number.isInteger(v[k]) || (v[k] as number) < 0) throw new Error(`spec.index.${k}: want a whole number of seconds, got ${JSON.stringify(v[k])}`);
    o[k] = v[k] as number;
  }
  if (v.podRecords !== undefined) {
    if (!POD_RECORDS_MODES.includes(v.podRecords as never)) throw new Error(`spec.index.podRecords: want one of ${POD_RECORDS_MODES.join(', ')}`);
    o.podRecords = v.podRecords as DnsIndexOptions['podRecords'];
  }
  return o;
}

function serverOptions(v: unknown): Partial<DnsServerOptions> {
  if (!isObject(v)) throw new Error('spec.server: want an object with at least "listen"');
  const o: Partial<DnsServerOptions> = { listen: upstream(v.listen, 'spec.server.listen') };
  if (v.upstreams !== undefined) {
    if (!Array.isArray(v.upstreams)) throw new Error('spec.server.upstreams: want an array');
    o.upstreams = v.upstreams.map((u, i) => upstream(u, `spec.server.upstreams[${i}]`));
  }
  for (const k of NUMBER_OPTIONS) {
    if (v[k] === undefined) continue;
    if (!Number.isInteger(v[k]) || (v[k] as number) <= 0) throw new Error(`spec.server.${k}: want a positive whole number, got ${JSON.stringify(v[k])}`);
    o[k] = v[k] as number;
  }
  if (v.loopProbe !== undefined) o.loopProbe = v.loopProbe === true;
  o.log = {
    warn: (obj: unknown, msg: string) => process.stderr.write(`${JSON.stringify({ level: 'warn', msg, ...(isObject(obj) ? obj : {}) })}\n`),
    info: (obj: unknown, msg: string) => process.stderr.write(`${JSON.stringify({ level: 'info', msg, ...(isObject(obj) ? obj : {}) })}\n`),
  };
  return o;
}

function apply(live: LiveDnsIndex, op: string, object: Service & Endpoints & Pod): void {
  if (op === 'setService') live.setService(object);
  else if (op === 'deleteService') live.deleteService(object);
  else if (op === 'setEndpoints') live.setEndpoints(object);
  else if (op === 'deleteEndpoints') live.deleteEndpoints(object);
  else if (op === 'setPod') live.setPod(object);
  else live.deletePod(object);
}

async function main(): Promise<void> {
  const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
  const it = lines[Symbol.asyncIterator]();
  const first = await it.next();
  if (first.done) throw new Error('no spec on stdin: want one JSON line first');
  let spec: unknown;
  try {
    spec = JSON.parse(first.value);
  } catch (err) {
    throw new Error(`the spec line is not JSON: ${(err as Error).message}`);
  }
  if (!isObject(spec)) throw new Error('the spec: want a JSON object');
  const live = new LiveDnsIndex(indexOptions(spec.index));
  for (const s of list(spec.services, 'Service', 'spec.services')) live.setService(s);
  for (const e of list(spec.endpoints, 'Endpoints', 'spec.endpoints')) live.setEndpoints(e);
  for (const p of list(spec.pods, 'Pod', 'spec.pods')) live.setPod(p);
  const server = new DnsServer(live.snapshot(), serverOptions(spec.server));
  await server.start();
  const state = () => ({ loops: server.loops, upstreams: server.forwarder.upstreams.map(upstreamText) });
  say({ ready: true, address: server.address, ...state() });
  const parent = process.ppid; // stdin closes when the test dies; this also catches a reparented child
  const guard = setInterval(() => {
    if (process.ppid !== parent) process.exit(0);
  }, 500);
  for (;;) {
    const next = await it.next();
    if (next.done) break;
    if (!next.value.trim()) continue;
    let id: unknown;
    try {
      const msg = JSON.parse(next.value) as unknown;
      if (!isObject(msg)) throw new Error('want a JSON object');
      id = msg.id;
      if (msg.op === 'stats') {
        say({ id, stats: server.stats, ...state() });
        continue;
      }
      const kind = typeof msg.op === 'string' ? OPS[msg.op] : undefined;
      if (!kind) throw new Error(`op: want stats or one of ${Object.keys(OPS).join(', ')}, got ${JSON.stringify(msg.op)}`);
      apply(live, msg.op as string, kubeObject(msg.object, kind, `${msg.op as string}.object`));
      server.update(live.snapshot());
      say({ id, ok: true, at: Date.now() });
    } catch (err) {
      say({ id, error: `change line ${JSON.stringify(next.value.slice(0, 100))}: ${(err as Error).message}` });
    }
  }
  clearInterval(guard);
  await server.stop();
}

main().catch((err: Error) => {
  say({ error: err.message });
  process.exit(1);
});
