// Connectivity probes between lab namespaces and the matrix printed from their results. Probes run
// with bounded concurrency and a per-probe time limit.
import { execInNetns } from '../netns/exec.js';

export interface Probe {
  from: string;
  fromNetns: string;
  to: string;
  toIp: string;
  kind: 'ping' | 'tcp';
}

export interface ProbeResult extends Probe {
  ok: boolean;
  detail: string;
}

export async function runProbe(p: Probe): Promise<ProbeResult> {
  const r = await execInNetns(p.fromNetns, 'ping', ['-n', '-q', '-c', '1', '-W', '2', p.toIp], { timeoutMs: 5000 });
  const rtt = /= [\d.]+\/([\d.]+)\//.exec(r.stdout);
  const ok = r.code === 0;
  const detail = ok ? `${rtt ? rtt[1] : '?'} ms` : (r.stderr.trim() || r.stdout.trim().split('\n').pop() || `exit ${r.code}`);
  return { ...p, ok, detail };
}

export async function runProbes(probes: Probe[], concurrency = 8): Promise<ProbeResult[]> {
  const results: ProbeResult[] = new Array(probes.length);
  let next = 0;
  const worker = async () => {
    while (next < probes.length) {
      const i = next++;
      results[i] = await runProbe(probes[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, probes.length) }, worker));
  return results;
}

/** Rows = sources, columns = destinations; "ok"/"FAIL"; ends with the summary line. */
export function formatMatrix(title: string, results: ProbeResult[]): string {
  const froms = [...new Set(results.map((r) => r.from))];
  const targets = new Set(results.map((r) => r.to));
  // Columns in the order names first appear (sources first), so node1..nodeN line up on both axes.
  const tos = [...new Set([...froms, ...targets])].filter((n) => targets.has(n));
  const width = Math.max(6, ...tos.map((t) => t.length), ...froms.map((f) => f.length)) + 2;
  const lines = [title, ''.padEnd(width) + tos.map((t) => t.padEnd(width)).join('')];
  for (const f of froms) {
    const cells = tos.map((t) => {
      const r = results.find((x) => x.from === f && x.to === t);
      return (r ? (r.ok ? 'ok' : 'FAIL') : '-').padEnd(width);
    });
    lines.push(f.padEnd(width) + cells.join(''));
  }
  for (const r of results.filter((x) => !x.ok)) lines.push(`  FAIL ${r.from} -> ${r.to} (${r.toIp}): ${r.detail}`);
  const ok = results.filter((r) => r.ok).length;
  lines.push(`connectivity: ${ok}/${results.length} ok`);
  return lines.join('\n');
}
