// The DNS tests' fake upstream (test/lib/dns-fake-upstream.ts) in a process of its own, to run
// inside a network namespace: `node dns-upstream-child.js upstream HOST PORT` (UDP + TCP, the
// fake's answers) or `... relay HOST PORT TARGET_HOST TARGET_PORT` (every datagram sent on to the
// target, the answer relayed back: a stub resolver). It prints {"ready":true,"port":N}; each
// "stats" line on stdin is answered {"questions":[...]} (upstream) or {"relayed":N} (relay).
// Ends when stdin closes.
import readline from 'node:readline';
import { fakeUpstream, relay } from './dns-fake-upstream.js';

const say = (o: unknown): void => void process.stdout.write(`${JSON.stringify(o)}\n`);
const USAGE = 'usage: dns-upstream-child.js upstream HOST PORT | relay HOST PORT TARGET_HOST TARGET_PORT';

function port(text: string | undefined, what: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`${what}: want a port 0-65535, got ${JSON.stringify(text)}; ${USAGE}`);
  return n;
}

async function main(): Promise<void> {
  const [mode, host, portText, targetHost, targetPort] = process.argv.slice(2);
  if (!host || (mode !== 'upstream' && mode !== 'relay') || (mode === 'relay' && !targetHost)) throw new Error(USAGE);
  let stats: () => unknown;
  let close: () => Promise<void>;
  let bound: number;
  if (mode === 'upstream') {
    const u = await fakeUpstream(host, port(portText, 'PORT'));
    [stats, close, bound] = [() => ({ questions: u.questions }), u.close, u.port];
  } else {
    const target = port(targetPort, 'TARGET_PORT');
    const r = await relay(() => target, host, targetHost, port(portText, 'PORT'));
    [stats, close, bound] = [() => ({ relayed: r.relayed }), r.close, r.port];
  }
  say({ ready: true, port: bound });
  for await (const line of readline.createInterface({ input: process.stdin, crlfDelay: Infinity })) {
    if (line.trim() === 'stats') say(stats());
    else if (line.trim()) say({ error: `unknown command ${JSON.stringify(line)}: want "stats"` });
  }
  await close();
  process.exit(0);
}

main().catch((err: Error) => {
  say({ error: err.message });
  process.exit(1);
});
