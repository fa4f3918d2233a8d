// The proxy's DNAT counters in `iptables-save -c -t nat` (pure): every rule counts; ours are the
// `[PACKETS:BYTES] -A PODWIRE-SEP-… --comment "KEY" … -j DNAT --to-destination IP:PORT` rules,
// one per endpoint of each service port (the comment is the port's key).
import { commentKey, counterValue, type DnatCounter } from '../counters.js';
import { isIp } from '../../net/ip.js';
import { PREFIX } from './names.js';

const COUNTS_RE = /^\[(\d+):(\d+)\] -A (\S+) /;
const COMMENT_RE = /--comment (?:"((?:[^"\\]|\\.)*)"|(\S+))/;
const DNAT_RE = /-j DNAT --to-destination (\d+\.\d+\.\d+\.\d+):(\d+)(?:\s|$)/;

export function parseIptablesCounters(saved: string): DnatCounter[] {
  const out: DnatCounter[] = [];
  for (const line of saved.split('\n')) {
    if (!line.includes('-j DNAT')) continue;
    const m = COUNTS_RE.exec(line);
    if (!m) {
      if (line.startsWith('-A ')) throw new Error(`iptables-save: a rule without [packets:bytes] (run it with -c): ${line.slice(0, 200)}`);
      continue;
    }
    const chain = m[3]!;
    if (!chain.startsWith(PREFIX.sep)) continue;
    const d = DNAT_RE.exec(line);
    const c = COMMENT_RE.exec(line);
    if (!d || !c) throw new Error(`iptables-save: DNAT rule of ${chain} without a comment or an IP:PORT destination: ${line.slice(0, 200)}`);
    const what = `iptables rule of ${chain}`;
    const port = Number(d[2]);
    if (!isIp(d[1]) || port > 65535) throw new Error(`${what}: bad destination ${d[1]}:${d[2]}`);
    out.push({
      in: chain,
      portKey: commentKey(c[1] ?? c[2]!),
      endpoint: { ip: d[1]!, port },
      packets: counterValue(m[1], what),
      bytes: counterValue(m[2], what),
    });
  }
  return out;
}
