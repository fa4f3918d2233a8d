#!/usr/bin/env node
// The lab's tiny workload, run inside pod and host namespaces:
//   echo.js serve PORT NAME            TCP: answers every connection with "NAME CLIENT_IP\n" (the
//                                      address the server sees: shows whether NAT happened)
//   echo.js probe TIMEOUT_MS HOST:PORT…  connects to each target, prints one JSON line per target
//                                      {target, ok, name?, seenAs?, ms, error?}
import net from 'node:net';

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

function probeOne(target: string, timeoutMs: number): Promise<object> {
  const colon = target.lastIndexOf(':');
  const host = target.slice(0, colon).replace(/^\[|\]$/g, '');
  const port = Number(target.slice(colon + 1));
  const t0 = performance.now();
  return new Promise((resolve) => {
    let data = '';
    const sock = net.connect({ host, port });
    const done = (out: object) => {
      sock.destroy();
      resolve({ target, ms: Math.round((performance.now() - t0) * 10) / 10, ...out });
    };
    sock.setTimeout(timeoutMs, () => done({ ok: false, error: `no answer within ${timeoutMs} ms` }));
    sock.on('data', (d) => (data += d.toString('utf8')));
    sock.on('end', () => {
      const [name, seenAs] = data.trim().split(' ');
      done(name && seenAs ? { ok: true, name, seenAs } : { ok: false, error: `unexpected answer ${JSON.stringify(data)}` });
    });
    sock.on('error', (e: NodeJS.ErrnoException) => done({ ok: false, error: e.code ?? e.message }));
  });
}

async function probe(timeoutMs: number, targets: string[]): Promise<void> {
  const results = await Promise.all(targets.map((t) => probeOne(t, timeoutMs)));
  for (const r of results) process.stdout.write(JSON.stringify(r) + '\n');
}

const [mode, ...rest] = process.argv.slice(2);
if (mode === 'serve' && rest.length === 2 && /^\d+$/.test(rest[0]!)) serve(Number(rest[0]), rest[1]!);
else if (mode === 'probe' && rest.length >= 2 && /^\d+$/.test(rest[0]!)) void probe(Number(rest[0]), rest.slice(1));
else {
  process.stderr.write('usage: echo.js serve PORT NAME | echo.js probe TIMEOUT_MS HOST:PORT...\n');
  process.exit(2);
}
