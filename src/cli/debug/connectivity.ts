// `podwire connectivity`'s pure core: the probe plan (every ordered pod pair; with --services
// every pod × ClusterIP TCP service port; with --dns every pod × service name), a bounded-concurrency runner, the summary, the
// matrix rendering and the exit code. The gathering (API, agents) is in ../connectivity.ts.
import { EXIT, renderTable, type Cell, type Paint, painter } from './output.js';

export interface PodRef {
  /** "NS/NAME" */
  name: string;
  ip: string;
  node: string;
  netnsHint?: string;
}

export interface ServiceRef {
  /** "NS/NAME:PORT" */
  name: string;
  ip: string;
  port: number;
}

/** A name --dns resolves from every pod: the service's FQDN and the ClusterIP it must give. */
export interface DnsRef {
  /** "NAME.NS.svc.ZONE" */
  name: string;
  ip: string;
}

export type ProbeKind = 'pod' | 'service' | 'dns';

export interface Probe {
  source: PodRef;
  kind: ProbeKind;
  /** The destination's name: "NS/NAME" (pod), "NS/NAME:PORT" (service) or "NAME.NS.svc.ZONE" (dns). */
  destination: string;
  /** The pod's or service's address; for dns the ClusterIP the answer must hold. */
  ip: string;
  port?: number;
}

export interface PairResult {
  source: string;
  destination: string;
  kind: ProbeKind;
  ok: boolean;
  /** Round-trip (pod), connect (service) or lookup (dns) time in ms; null when it failed. */
  ms: number | null;
  error?: string;
}

/** A service port that --services did not probe, and why (a service without ready endpoints). */
export interface SkippedDestination {
  destination: string;
  reason: string;
}

export interface ConnectivityReport {
  pairs: PairResult[];
  summary: { total: number; ok: number; failed: number };
  healthy: boolean;
  /** With --services: the service ports not probed (no ready endpoint: a connect could only fail). */
  skipped: SkippedDestination[];
}

/** Every ordered pair of distinct pods, then (with services) each pod to each service port, then (with names) each pod to each name. */
export function planProbes(pods: PodRef[], services: ServiceRef[] = [], names: DnsRef[] = []): Probe[] {
  const probes: Probe[] = [];
  for (const s of pods) {
    for (const d of pods) if (d.name !== s.name) probes.push({ source: s, kind: 'pod', destination: d.name, ip: d.ip });
    for (const v of services) probes.push({ source: s, kind: 'service', destination: v.name, ip: v.ip, port: v.port });
    for (const n of names) probes.push({ source: s, kind: 'dns', destination: n.name, ip: n.ip });
  }
  return probes;
}

/** Run `fn` over `items` with at most `limit` at a time; results in the items' order. */
export async function mapBounded<T, R>(items: T[], limit: number, fn: (item: T, i: number) => Promise<R>, onDone?: (done: number) => void): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  let done = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
      onDone?.(++done);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return out;
}

/** Healthy: at least one pair and all ok (nothing tested is not a clean bill of health). */
export function buildReport(pairs: PairResult[], skipped: SkippedDestination[] = []): ConnectivityReport {
  const ok = pairs.filter((p) => p.ok).length;
  return { pairs, summary: { total: pairs.length, ok, failed: pairs.length - ok }, healthy: pairs.length > 0 && ok === pairs.length, skipped };
}

/**
 * The matrix: a row per source pod, a column per destination (pods, then services, then names, each sorted);
 * "-" for a pod to itself; `wide` adds each ok pair's time ("ok 0.412ms").
 */
export function renderMatrix(r: ConnectivityReport, paint: Paint = painter(false), wide = false): string {
  const sources = [...new Set(r.pairs.map((p) => p.source))];
  const dests = (['pod', 'service', 'dns'] as const).flatMap((k) => [...new Set(r.pairs.filter((p) => p.kind === k).map((p) => p.destination))].sort());
  const byKey = new Map(r.pairs.map((p) => [`${p.source}\0${p.destination}`, p]));
  const rows: Cell[][] = sources.map((s) => [s, ...dests.map((d): Cell => {
    const p = byKey.get(`${s}\0${d}`);
    if (!p) return { text: '-', style: 'dim' };
    return p.ok ? { text: wide && p.ms !== null ? `ok ${p.ms.toFixed(3)}ms` : 'ok', style: 'ok' } : { text: 'FAIL', style: 'bad' };
  })]);
  const lines = [renderTable(['SOURCE \\ DESTINATION', ...dests], rows, paint)];
  const failed = r.pairs.filter((p) => !p.ok);
  if (failed.length) {
    lines.push('', 'failures:');
    for (const p of failed) lines.push(`  ${p.source} → ${p.destination} (${p.kind}): ${p.error ?? 'no answer'}`);
  }
  if (r.skipped.length) {
    lines.push('', 'not probed:');
    for (const s of r.skipped) lines.push(`  ${s.destination}: ${s.reason}`);
  }
  lines.push('', `${r.summary.ok}/${r.summary.total} ok${r.summary.failed ? `, ${r.summary.failed} failed` : ''}${r.skipped.length ? `, ${r.skipped.length} not probed` : ''}`);
  return lines.join('\n');
}

export function connectivityExitCode(r: ConnectivityReport): number {
  return r.healthy ? EXIT.OK : EXIT.PROBLEM;
}
