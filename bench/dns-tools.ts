// The pure parts of the DNS benchmark (bench/dns.ts): the N services and their names, the dnsperf
// query file with the rcode each query must get, unbound's configuration holding the same records,
// and the parsers of dnsperf's summary and verbose (one line per answer) output.
import type { Service } from '../src/api/objects.js';

export const ZONE = 'cluster.local';
/** Both servers answer with this TTL (podwire's default) and negative TTL (the SOA's, podwire's default). */
export const TTL = 5;
export const NEGATIVE_TTL = 1;
export const SRV_PORT = { name: 'http', port: 80 };

export interface BenchService {
  name: string;
  namespace: string;
  clusterIp: string;
  /** The FQDN without the trailing dot. */
  fqdn: string;
}

/** The i-th ClusterIP: 10.96.0.16 onwards, inside the default service CIDR 10.96.0.0/12. */
export function clusterIpOf(i: number): string {
  const k = i + 16;
  return `10.${96 + (k >>> 16)}.${(k >>> 8) & 255}.${k & 255}`;
}

/** N ClusterIP services svc-<i> spread round robin over min(N, namespaces) namespaces ns-<j>. */
export function benchServices(n: number, namespaces = 100): BenchService[] {
  const spread = Math.min(n, namespaces);
  return Array.from({ length: n }, (_, i) => {
    const name = `svc-${i}`;
    const namespace = `ns-${i % spread}`;
    return { name, namespace, clusterIp: clusterIpOf(i), fqdn: `${name}.${namespace}.svc.${ZONE}` };
  });
}

/** The Service objects podwire's LiveDnsIndex is given: one named TCP port, so each has an SRV name. */
export function serviceObjects(services: BenchService[]): Service[] {
  return services.map((s) => ({
    apiVersion: 'v1', kind: 'Service', metadata: { name: s.name, namespace: s.namespace },
    spec: { type: 'ClusterIP', clusterIP: s.clusterIp, clusterIPs: [s.clusterIp], ports: [{ name: SRV_PORT.name, port: SRV_PORT.port, protocol: 'TCP' }] },
  }) as Service);
}

export const srvName = (s: BenchService) => `_${SRV_PORT.name}._tcp.${s.fqdn}`;
export const missingName = (s: BenchService) => `nosuch-${s.name}.${s.namespace}.svc.${ZONE}`;

export interface Query {
  name: string;
  type: 'A' | 'SRV';
  rcode: 'NOERROR' | 'NXDOMAIN';
}

/** Every service's A name once; every 10th service's SRV name; for every 20th a name that does not exist. */
export function queryMix(services: BenchService[]): Query[] {
  const out: Query[] = [];
  services.forEach((s, i) => {
    out.push({ name: s.fqdn, type: 'A', rcode: 'NOERROR' });
    if (i % 10 === 5) out.push({ name: srvName(s), type: 'SRV', rcode: 'NOERROR' });
    if (i % 20 === 7) out.push({ name: missingName(s), type: 'A', rcode: 'NXDOMAIN' });
  });
  return out;
}

/** dnsperf's input: "NAME TYPE" per line. */
export const queryFile = (queries: Query[]) => queries.map((q) => `${q.name} ${q.type}\n`).join('');

export function mixCounts(queries: Query[]): { a: number; srv: number; nxdomain: number } {
  return {
    a: queries.filter((q) => q.type === 'A' && q.rcode === 'NOERROR').length,
    srv: queries.filter((q) => q.type === 'SRV').length,
    nxdomain: queries.filter((q) => q.rcode === 'NXDOMAIN').length,
  };
}

/**
 * unbound as an in-memory authoritative server for the same records: the zone static (a name
 * without local-data is NXDOMAIN with the SOA, as podwire answers), everything else refused (no
 * upstream, no recursion: it never sends a packet), iterator only (no DNSSEC trust anchor file),
 * in the foreground, no chroot, no user switch, no remote control; all files in `dir`.
 */
export function unboundConfig(o: { dir: string; address: string; port: number; threads: number; services: BenchService[] }): string {
  const q = (s: string) => `"${s}"`;
  const lines = [
    'server:',
    `  interface: ${o.address}`,
    `  port: ${o.port}`,
    '  do-ip6: no',
    '  do-tcp: yes',
    '  do-daemonize: no',
    '  username: ""',
    '  chroot: ""',
    `  directory: ${q(o.dir)}`,
    `  pidfile: ${q(`${o.dir}/unbound.pid`)}`,
    '  use-syslog: no',
    '  logfile: ""',
    '  verbosity: 1',
    `  num-threads: ${o.threads}`,
    '  module-config: "iterator"',
    '  access-control: 0.0.0.0/0 allow',
    '  local-zone: "." refuse',
    `  local-zone: "${ZONE}." static`,
    `  local-data: ${q(`${ZONE}. ${NEGATIVE_TTL} IN SOA ns.dns.${ZONE}. hostmaster.${ZONE}. 1 7200 1800 86400 ${NEGATIVE_TTL}`)}`,
    `  local-data: ${q(`${ZONE}. ${TTL} IN NS ns.dns.${ZONE}.`)}`,
  ];
  for (const s of o.services) {
    lines.push(`  local-data: ${q(`${s.fqdn}. ${TTL} IN A ${s.clusterIp}`)}`);
    lines.push(`  local-data: ${q(`${srvName(s)}. ${TTL} IN SRV 0 100 ${SRV_PORT.port} ${s.fqdn}.`)}`);
  }
  lines.push('remote-control:', '  control-enable: no', '');
  return lines.join('\n');
}

// ---- dnsperf output -----------------------------------------------------------------------------

export interface DnsperfSummary {
  sent: number;
  completed: number;
  /** Timed out (-t): no answer within the timeout. */
  lost: number;
  /** In flight when the time limit stopped the run (dnsperf prints the line only when there are any): no latency known. */
  interrupted: number;
  rcodes: Record<string, number>;
  responseBytes: number;
  runSeconds: number;
  qps: number;
  avgLatencyMs: number;
  stddevLatencyMs: number;
}

/** dnsperf's "Statistics:" block; throws naming the missing line when it is not there. */
export function parseDnsperfSummary(out: string): DnsperfSummary {
  const field = (label: string, re = '([\\d.]+)'): string => {
    const m = new RegExp(`^\\s*${label}:\\s+${re}`, 'm').exec(out);
    if (!m) throw new Error(`dnsperf output has no "${label}:" line (did it run? its output ends: ${JSON.stringify(out.slice(-300))})`);
    return m[1]!;
  };
  const rcodes: Record<string, number> = {};
  const codes = /^\s*Response codes:\s*(.*)$/m.exec(out)?.[1] ?? '';
  for (const m of codes.matchAll(/([A-Z]+) (\d+) \(/g)) rcodes[m[1]!] = Number(m[2]);
  return {
    sent: Number(field('Queries sent')),
    completed: Number(field('Queries completed')),
    lost: Number(field('Queries lost')),
    interrupted: Number(/^\s*Queries interrupted:\s+(\d+)/m.exec(out)?.[1] ?? 0),
    rcodes,
    responseBytes: Number(field('Average packet size', 'request \\d+, response (\\d+)')),
    runSeconds: Number(field('Run time \\(s\\)')),
    qps: Number(field('Queries per second')),
    avgLatencyMs: 1000 * Number(field('Average Latency \\(s\\)')),
    stddevLatencyMs: 1000 * Number(field('Latency StdDev \\(s\\)')),
  };
}

export interface VerboseAnswers {
  /** Each answer's latency (ms), in arrival order. */
  latenciesMs: number[];
  /** Answers whose rcode is not the one their question must get (at most 5 kept) and their count. */
  wrong: string[];
  wrongCount: number;
}

/** dnsperf -v: "> RCODE NAME TYPE SECONDS" per answer; every rcode checked against the query mix. */
export function parseVerbose(out: string, expected: Map<string, string>): VerboseAnswers {
  const latenciesMs: number[] = [];
  const wrong: string[] = [];
  let wrongCount = 0;
  for (const m of out.matchAll(/^> (\S+) (\S+) (\S+) ([\d.]+)$/gm)) {
    latenciesMs.push(1000 * Number(m[4]));
    const want = expected.get(`${m[2]!.toLowerCase().replace(/\.$/, '')} ${m[3]}`);
    if (want !== m[1]) {
      wrongCount++;
      if (wrong.length < 5) wrong.push(`${m[2]} ${m[3]}: ${m[1]}, want ${want ?? 'no such question in the file'}`);
    }
  }
  return { latenciesMs, wrong, wrongCount };
}

export const expectedRcodes = (queries: Query[]) => new Map(queries.map((q) => [`${q.name} ${q.type}`, q.rcode]));

/** Nearest-rank percentile over the sorted values; lost queries count as Infinity (slower than any answer). */
export function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export function median(xs: number[]): number {
  const s = xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  if (!s.length) return NaN;
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}
