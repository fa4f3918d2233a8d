// The command line of the lab's forwarder (forwarder.ts), parsed without I/O:
//   forwarder.js --forward LISTEN=TARGET [--forward …] [--tls-cert F --tls-key F]
//                [--max-connections N] [--watch FILE]
// LISTEN   tcp:127.0.0.1:PORT   plain TCP on loopback (PORT 0: the kernel picks one; the ready line says which)
//          tls:127.0.0.1:PORT   the same, TLS terminated here with --tls-cert/--tls-key (kubectl
//                               sends a bearer token only over TLS; the lab's control plane serves
//                               plain HTTP on its unix socket)
//          unix:PATH            a unix socket (mode 0600)
// TARGET   unix:PATH | tcp:IPV4:PORT
// A listening socket on loopback or a unix socket is all a forwarder may add to the namespace it
// runs in (the root netns, for `lab up --keep`), so a tcp/tls LISTEN host outside 127.0.0.0/8 is
// refused here.
import { isIp } from '../net/ip.js';

export type Endpoint = { kind: 'tcp'; host: string; port: number } | { kind: 'unix'; path: string };
export type ListenSpec = Endpoint & { tls?: boolean };

export interface ForwardRule {
  listen: ListenSpec;
  target: Endpoint;
}

export interface ForwarderConfig {
  rules: ForwardRule[];
  tls?: { cert: string; key: string };
  maxConnections: number;
  /** Exit once this file is gone (the lab's state file: the lab was removed). */
  watch?: string;
}

export const DEFAULT_MAX_CONNECTIONS = 64;
export const MAX_CONNECTIONS_LIMIT = 1024;

export const FORWARDER_USAGE = 'usage: forwarder.js --forward LISTEN=TARGET [--forward …] [--tls-cert F --tls-key F] [--max-connections N] [--watch FILE]\n  LISTEN: tcp:127.0.0.1:PORT | tls:127.0.0.1:PORT | unix:PATH   TARGET: unix:PATH | tcp:IPV4:PORT';

function hostPort(text: string, what: string): { host: string; port: number } {
  const i = text.lastIndexOf(':');
  const host = text.slice(0, i);
  const portText = text.slice(i + 1);
  if (i < 0 || !isIp(host, 4)) throw new Error(`${what}: ${JSON.stringify(text)}: expected IPV4:PORT, e.g. 127.0.0.1:0`);
  if (!/^\d{1,5}$/.test(portText) || Number(portText) > 65535) throw new Error(`${what}: port ${JSON.stringify(portText)} is not in 0-65535`);
  return { host, port: Number(portText) };
}

function unixPath(text: string, what: string): string {
  if (!text.startsWith('/')) throw new Error(`${what}: unix socket path ${JSON.stringify(text)} must be absolute`);
  // sockaddr_un.sun_path is 108 bytes with its NUL.
  if (Buffer.byteLength(text) > 107) throw new Error(`${what}: unix socket path ${text} is longer than 107 bytes`);
  return text;
}

export function parseListen(text: string): ListenSpec {
  const what = `listen ${JSON.stringify(text)}`;
  if (text.startsWith('unix:')) return { kind: 'unix', path: unixPath(text.slice(5), what) };
  const m = /^(tcp|tls):(.*)$/.exec(text);
  if (!m) throw new Error(`${what}: expected tcp:127.0.0.1:PORT, tls:127.0.0.1:PORT or unix:PATH`);
  const hp = hostPort(m[2]!, what);
  if (!hp.host.startsWith('127.')) throw new Error(`${what}: a forwarder listens on loopback only (127.0.0.0/8), never on a routable address`);
  return { kind: 'tcp', ...hp, ...(m[1] === 'tls' ? { tls: true } : {}) };
}

export function parseTarget(text: string): Endpoint {
  const what = `target ${JSON.stringify(text)}`;
  if (text.startsWith('unix:')) return { kind: 'unix', path: unixPath(text.slice(5), what) };
  if (text.startsWith('tcp:')) {
    const hp = hostPort(text.slice(4), what);
    if (hp.port === 0) throw new Error(`${what}: port 0 is not a destination`);
    return { kind: 'tcp', ...hp };
  }
  throw new Error(`${what}: expected unix:PATH or tcp:IPV4:PORT`);
}

export function parseRule(text: string): ForwardRule {
  const eq = text.indexOf('=');
  if (eq < 0) throw new Error(`--forward ${JSON.stringify(text)}: expected LISTEN=TARGET, e.g. tcp:127.0.0.1:0=unix:/run/x.sock`);
  return { listen: parseListen(text.slice(0, eq)), target: parseTarget(text.slice(eq + 1)) };
}

export function parseForwarderArgs(argv: string[]): ForwarderConfig {
  const rules: ForwardRule[] = [];
  let cert: string | undefined;
  let key: string | undefined;
  let maxConnections = DEFAULT_MAX_CONNECTIONS;
  let watch: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const value = argv[i + 1];
    if (!['--forward', '--tls-cert', '--tls-key', '--max-connections', '--watch'].includes(flag)) throw new Error(`unknown argument ${JSON.stringify(flag)}\n${FORWARDER_USAGE}`);
    if (value === undefined) throw new Error(`${flag} needs a value\n${FORWARDER_USAGE}`);
    i++;
    if (flag === '--forward') rules.push(parseRule(value));
    else if (flag === '--tls-cert') cert = value;
    else if (flag === '--tls-key') key = value;
    else if (flag === '--watch') watch = value;
    else {
      if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > MAX_CONNECTIONS_LIMIT) throw new Error(`--max-connections ${JSON.stringify(value)}: expected an integer in 1-${MAX_CONNECTIONS_LIMIT}`);
      maxConnections = Number(value);
    }
  }
  if (rules.length === 0) throw new Error(`no --forward given\n${FORWARDER_USAGE}`);
  if ((cert === undefined) !== (key === undefined)) throw new Error('--tls-cert and --tls-key go together');
  const tlsRules = rules.filter((r) => r.listen.tls);
  if (tlsRules.length && cert === undefined) throw new Error(`a tls: listener needs --tls-cert and --tls-key`);
  if (!tlsRules.length && cert !== undefined) throw new Error('--tls-cert given but no tls: listener');
  return { rules, ...(cert !== undefined ? { tls: { cert, key: key! } } : {}), maxConnections, ...(watch !== undefined ? { watch } : {}) };
}

export function formatEndpoint(e: ListenSpec): string {
  return e.kind === 'unix' ? `unix:${e.path}` : `${e.tls ? 'tls' : 'tcp'}:${e.host}:${e.port}`;
}

/** The forwarder's one stdout line once every listener is up (a port 0 replaced by the real one). */
export interface ReadyLine {
  ready: true;
  pid: number;
  listening: string[];
}

export function parseReadyLine(line: string): ReadyLine {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    throw new Error(`forwarder: expected its JSON ready line, got ${JSON.stringify(line.slice(0, 200))}`);
  }
  const r = v as ReadyLine;
  if (typeof v !== 'object' || v === null || r.ready !== true || !Number.isInteger(r.pid) || !Array.isArray(r.listening) || !r.listening.every((l) => typeof l === 'string')) throw new Error(`forwarder: malformed ready line ${JSON.stringify(line.slice(0, 200))}`);
  return r;
}

/** The port of a tcp:/tls: listener as the ready line reports it. */
export function listenPort(listening: string): number {
  const spec = parseListen(listening);
  if (spec.kind !== 'tcp') throw new Error(`${listening} is not a TCP listener`);
  return spec.port;
}
