#!/usr/bin/env node
// The lab's tiny workload, run inside pod and host namespaces:
//   echo.js serve PORT NAME            TCP: answers every connection with "NAME CLIENT_IP\n" (the
//                                      address the server sees: shows whether NAT happened)
//   echo.js probe TIMEOUT_MS HOST:PORT…  connects to each target, prints one JSON line per target
//                                      {target, ok, name?, seenAs?, ms, error?}
//   echo.js probe-many COUNT TIMEOUT_MS HOST:PORT [CONCURRENCY]
//                                      COUNT connections to one target, CONCURRENCY (default 20,
//                                      at most 100) at a time; prints one JSON summary
//                                      {target, count, ok, failed, names, seenAs, errors, maxMs}
//                                      (names/seenAs/errors: value → how many times)
//   echo.js latency COUNT WARMUP TIMEOUT_MS HOST:PORT
//                                      WARMUP unmeasured, then COUNT measured connections to one
//                                      target, one at a time; prints one JSON summary {target,
//                                      count, ok, failed, names, errors, connectUs, answerUs}:
//                                      per successful connection, µs from net.connect() to the
//                                      'connect' event (handshake done) and to the end of the
//                                      answer (performance.now(), high resolution), in order
//   echo.js switch TIMEOUT_MS INTERVAL_MS HOST:PORT WANT
//                                      one connection every INTERVAL_MS (one at a time) until the
//                                      answering name ends with WANT ("!SUFFIX": does not end with
//                                      SUFFIX); prints "ready" after the first answer that does
//                                      not match, then one JSON line {ok, tries, failed, hitNs,
//                                      prevNs, name?, error?}: process.hrtime.bigint()
//                                      (CLOCK_MONOTONIC, shared by all processes) at the start of
//                                      the first matching attempt and of the last one before it
import net from 'node:net';

/** One line of `echo.js probe`: one connection to target. */
export interface ProbeAnswer {
  target: string;
  ok: boolean;
  /** The answering echo server's name. */
  name?: string;
  /** The client address the echo server saw. */
  seenAs?: string;
  /** The address connected to (a target given by name: what the resolver answered). */
  address?: string;
  ms: number;
  error?: string;
}

/** The summary `echo.js probe-many` prints. */
export interface ManySummary {
  target: string;
  count: number;
  ok: number;
  failed: number;
  /** Answering echo server name → connections. */
  names: Record<string, number>;
  /** Client address the echo server saw → connections. */
  seenAs: Record<string, number>;
  /** Error (ECONNREFUSED, "no answer within …") → connections. */
  errors: Record<string, number>;
  maxMs: number;
}

function serve(port: number, name: string): void {
  const server = net.createServer((sock) => {
    const peer = (sock.remoteAddress ?? '').replace(/^::ffff:/, '');
    sock.end(`${name} ${peer}\n`);
    sock.on('error', () => undefined);
  });
  server.listen(port, () => process.stdout.write(`listening ${port}\n`));
  const stop = () => server.close(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

function hostPort(target: string): [string, number] {
  const colon = target.lastIndexOf(':');
  return [target.slice(0, colon).replace(/^\[|\]$/g, ''), Number(target.slice(colon + 1))];
}

/** Counts one more k in m. */
const tally = (m: Record<string, number>, k: string) => (m[k] = (m[k] ?? 0) + 1);

function probeOne(target: string, timeoutMs: number): Promise<ProbeAnswer> {
  const [host, port] = hostPort(target);
  const t0 = performance.now();
  return new Promise((resolve) => {
    let data = '';
    const sock = net.connect({ host, port });
    const done = (out: Omit<ProbeAnswer, 'target' | 'ms'>) => {
      sock.destroy();
      resolve({ target, ms: Math.round((performance.now() - t0) * 10) / 10, ...out });
    };
    sock.setTimeout(timeoutMs, () => done({ ok: false, error: `no answer within ${timeoutMs} ms` }));
    sock.on('data', (d) => (data += d.toString('utf8')));
    sock.on('end', () => {
      const [name, seenAs] = data.trim().split(' ');
      const address = sock.remoteAddress?.replace(/^::ffff:/, '');
      done(name && seenAs ? { ok: true, name, seenAs, ...(address ? { address } : {}) } : { ok: false, error: `unexpected answer ${JSON.stringify(data)}` });
    });
    sock.on('error', (e: NodeJS.ErrnoException) => done({ ok: false, error: e.code ?? e.message }));
  });
}

async function probe(timeoutMs: number, targets: string[]): Promise<void> {
  const results = await Promise.all(targets.map((t) => probeOne(t, timeoutMs)));
  for (const r of results) process.stdout.write(JSON.stringify(r) + '\n');
}

async function probeMany(count: number, timeoutMs: number, target: string, concurrency: number): Promise<void> {
  const summary: ManySummary = { target, count, ok: 0, failed: 0, names: {}, seenAs: {}, errors: {}, maxMs: 0 };
  let started = 0;
  const worker = async () => {
    while (started < count) {
      started++;
      const r = await probeOne(target, timeoutMs);
      summary.maxMs = Math.max(summary.maxMs, r.ms);
      if (r.ok) {
        summary.ok++;
        tally(summary.names, r.name!);
        tally(summary.seenAs, r.seenAs!);
      } else {
        summary.failed++;
        tally(summary.errors, r.error ?? 'failed');
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  process.stdout.write(JSON.stringify(summary) + '\n');
}

/** One connection: µs to the handshake and to the end of the answer, or what went wrong. */
function timeOne(host: string, port: number, timeoutMs: number): Promise<{ connectUs: number; answerUs: number; name: string } | { error: string }> {
  const t0 = performance.now();
  let connected = 0;
  return new Promise((resolve) => {
    let data = '';
    const sock = net.connect({ host, port, noDelay: true });
    const done = (out: { connectUs: number; answerUs: number; name: string } | { error: string }) => {
      sock.destroy();
      resolve(out);
    };
    sock.setTimeout(timeoutMs, () => done({ error: `no answer within ${timeoutMs} ms` }));
    sock.on('connect', () => (connected = performance.now()));
    sock.on('data', (d) => (data += d.toString('utf8')));
    sock.on('end', () => {
      const end = performance.now();
      const name = data.trim().split(' ')[0];
      done(name && connected ? { connectUs: Math.round((connected - t0) * 1000), answerUs: Math.round((end - t0) * 1000), name } : { error: `unexpected answer ${JSON.stringify(data)}` });
    });
    sock.on('error', (e: NodeJS.ErrnoException) => done({ error: e.code ?? e.message }));
  });
}

async function latency(count: number, warmup: number, timeoutMs: number, target: string): Promise<void> {
  const [host, port] = hostPort(target);
  const summary = { target, count, ok: 0, failed: 0, names: {} as Record<string, number>, errors: {} as Record<string, number>, connectUs: [] as number[], answerUs: [] as number[] };
  for (let i = 0; i < warmup + count; i++) {
    const r = await timeOne(host, port, timeoutMs);
    if (i < warmup) continue;
    if ('error' in r) {
      summary.failed++;
      tally(summary.errors, r.error);
      continue;
    }
    summary.ok++;
    tally(summary.names, r.name);
    summary.connectUs.push(r.connectUs);
    summary.answerUs.push(r.answerUs);
  }
  process.stdout.write(JSON.stringify(summary) + '\n');
}

async function watchSwitch(timeoutMs: number, intervalMs: number, target: string, want: string): Promise<void> {
  const [host, port] = hostPort(target);
  const suffix = want.replace(/^!/, '');
  const matches = (name: string) => name.endsWith(suffix) !== want.startsWith('!');
  const out = (o: object): void => void process.stdout.write(JSON.stringify(o) + '\n');
  const deadline = performance.now() + timeoutMs;
  let [tries, failed, prevNs] = [0, 0, 0n];
  while (performance.now() < deadline) {
    const startNs = process.hrtime.bigint();
    tries++;
    const r = await timeOne(host, port, 1000);
    if ('error' in r) failed++;
    else if (!matches(r.name)) {
      if (prevNs === 0n) process.stdout.write('ready\n');
      prevNs = startNs;
    } else {
      return out(prevNs === 0n ? { ok: false, tries, failed, error: `already answered by ${r.name}` } : { ok: true, tries, failed, hitNs: String(startNs), prevNs: String(prevNs), name: r.name });
    }
    const wait = intervalMs - Number(process.hrtime.bigint() - startNs) / 1e6;
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
  }
  out({ ok: false, tries, failed, error: `no answer matching ${JSON.stringify(want)} within ${timeoutMs} ms` });
}

const [mode, ...rest] = process.argv.slice(2);
if (mode === 'serve' && rest.length === 2 && /^\d+$/.test(rest[0]!)) serve(Number(rest[0]), rest[1]!);
else if (mode === 'probe' && rest.length >= 2 && /^\d+$/.test(rest[0]!)) void probe(Number(rest[0]), rest.slice(1));
else if (mode === 'probe-many' && (rest.length === 3 || rest.length === 4) && rest.every((a, i) => i === 2 || /^\d+$/.test(a)) && Number(rest[0]) >= 1 && Number(rest[0]) <= 10_000) {
  void probeMany(Number(rest[0]), Number(rest[1]), rest[2]!, Math.min(100, Math.max(1, Number(rest[3] ?? 20))));
} else if (mode === 'latency' && rest.length === 4 && rest.slice(0, 3).every((a) => /^\d+$/.test(a)) && Number(rest[0]) >= 1 && Number(rest[0]) <= 100_000 && Number(rest[1]) <= 10_000) {
  void latency(Number(rest[0]), Number(rest[1]), Number(rest[2]), rest[3]!);
} else if (mode === 'switch' && rest.length === 4 && rest.slice(0, 2).every((a) => /^\d+$/.test(a)) && rest[3]!.replace(/^!/, '') !== '') {
  void watchSwitch(Number(rest[0]), Number(rest[1]), rest[2]!, rest[3]!);
} else {
  process.stderr.write('usage: echo.js serve PORT NAME | echo.js probe TIMEOUT_MS HOST:PORT... | echo.js probe-many COUNT TIMEOUT_MS HOST:PORT [CONCURRENCY] | echo.js latency COUNT WARMUP TIMEOUT_MS HOST:PORT | echo.js switch TIMEOUT_MS INTERVAL_MS HOST:PORT WANT\n');
  process.exit(2);
}
