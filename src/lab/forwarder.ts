#!/usr/bin/env node
// The lab's forwarder: pipes each accepted connection to its target, nothing else (the command
// line is forward-spec.ts). `lab up --keep` runs one in the root netns (127.0.0.1:PORT → the
// control plane's unix socket, so kubectl and podwire from the machine's own shell reach the lab)
// and one in the lab's underlay netns (a unix socket per node → the node agent's HTTPS debug
// endpoint). At most --max-connections at a time per listener (more are refused by the kernel
// backlog: net.Server.maxConnections closes them). Prints one JSON ready line on stdout
// ({ready, pid, listening}), logs to stderr, exits 0 on SIGTERM/SIGINT, and on its own once the
// --watch file (the lab's state file) is gone, so a removed lab leaves no forwarder behind.
import fs from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { formatEndpoint, parseForwarderArgs, type Endpoint, type ForwarderConfig, type ForwardRule } from './forward-spec.js';

const WATCH_INTERVAL_MS = 1000;

function connectTarget(t: Endpoint): net.Socket {
  return t.kind === 'unix' ? net.connect({ path: t.path, allowHalfOpen: true }) : net.connect({ host: t.host, port: t.port, allowHalfOpen: true });
}

function pipe(client: net.Socket, rule: ForwardRule): void {
  const upstream = connectTarget(rule.target);
  const done = () => {
    client.destroy();
    upstream.destroy();
  };
  client.on('error', done).on('close', done);
  upstream.on('error', (e) => {
    process.stderr.write(`forwarder: ${formatEndpoint(rule.listen)} → ${rule.target.kind === 'unix' ? rule.target.path : `${rule.target.host}:${rule.target.port}`}: ${e.message}\n`);
    done();
  }).on('close', done);
  client.pipe(upstream);
  upstream.pipe(client);
}

function listen(rule: ForwardRule, cfg: ForwarderConfig, tlsOpts: tls.TlsOptions | undefined): Promise<{ server: net.Server; address: string }> {
  const onConn = (s: net.Socket) => pipe(s, rule);
  // Half-open both ways: a client's end reaches the target, whose answer still comes back.
  const server = rule.listen.tls ? tls.createServer({ ...tlsOpts, allowHalfOpen: true }, onConn) : net.createServer({ allowHalfOpen: true }, onConn);
  server.maxConnections = cfg.maxConnections;
  // A TLS handshake that fails (a plain-HTTP client, a bad client) is that client's problem only.
  server.on('tlsClientError', () => undefined);
  const l = rule.listen;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    if (l.kind === 'unix') {
      // A socket file left by a killed forwarder would make listen fail with EADDRINUSE.
      if (fs.existsSync(l.path) && fs.statSync(l.path).isSocket()) fs.unlinkSync(l.path);
      server.listen(l.path, () => {
        fs.chmodSync(l.path, 0o600);
        resolve({ server, address: formatEndpoint(l) });
      });
    } else {
      server.listen({ host: l.host, port: l.port }, () => {
        const port = (server.address() as net.AddressInfo).port;
        resolve({ server, address: formatEndpoint({ ...l, port }) });
      });
    }
  });
}

async function main(): Promise<void> {
  let cfg: ForwarderConfig;
  try {
    cfg = parseForwarderArgs(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`forwarder: ${(e as Error).message}\n`);
    process.exit(2);
  }
  const tlsOpts = cfg.tls ? { cert: fs.readFileSync(cfg.tls.cert), key: fs.readFileSync(cfg.tls.key) } : undefined;
  const servers: net.Server[] = [];
  const listening: string[] = [];
  for (const rule of cfg.rules) {
    const r = await listen(rule, cfg, tlsOpts);
    servers.push(r.server);
    listening.push(r.address);
  }
  const stop = (why: string) => {
    process.stderr.write(`forwarder: ${why}: exiting\n`);
    for (const s of servers) s.close();
    for (const rule of cfg.rules) if (rule.listen.kind === 'unix') fs.rmSync(rule.listen.path, { force: true });
    process.exit(0);
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  if (cfg.watch !== undefined) {
    const watch = cfg.watch;
    setInterval(() => {
      if (!fs.existsSync(watch)) stop(`${watch} is gone`);
    }, WATCH_INTERVAL_MS);
  }
  // The parent reads this one line, then closes the pipe; nothing else goes to stdout.
  process.stdout.write(JSON.stringify({ ready: true, pid: process.pid, listening }) + '\n');
  process.stdout.on('error', () => undefined);
}

main().catch((e) => {
  process.stderr.write(`forwarder: ${(e as Error).message}\n`);
  process.exit(1);
});
