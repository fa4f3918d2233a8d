// The podwire-controlplane binary as a process for integration tests: init a data dir, start it on
// a free loopback port, wait for /readyz, stop it by PID (SIGTERM, or SIGKILL for crash tests).
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './etcd.js';

export const CONTROLPLANE_MAIN = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..', 'src', 'controlplane', 'main.js');

export function initDataDir(extra: string[] = []): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pw-cp-'));
  execFileSync('node', [CONTROLPLANE_MAIN, 'init', '--data-dir', dir, ...extra], { stdio: 'pipe' });
  return dir;
}

/** A self-signed certificate for 127.0.0.1 made with openssl, in dir (tls.crt, tls.key). */
export function selfSignedCert(dir: string): { cert: string; key: string } {
  const cert = path.join(dir, 'tls.crt');
  const key = path.join(dir, 'tls.key');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=podwire-test', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'pipe' });
  return { cert, key };
}

export interface RunningControlPlane {
  url: string;
  port: number;
  dir: string;
  token: string;
  child: ChildProcess;
  log(): string;
  /** SIGTERM and wait; resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface StartOptions {
  dir?: string;
  port?: number;
  args?: string[];
  tls?: { cert: string; key: string };
}

export async function startControlPlane(opts: StartOptions = {}): Promise<RunningControlPlane> {
  const dir = opts.dir ?? initDataDir();
  const port = opts.port ?? (await freePort());
  const tlsArgs = opts.tls ? ['--tls-cert', opts.tls.cert, '--tls-key', opts.tls.key] : [];
  const child = spawn('node', [CONTROLPLANE_MAIN, '--data-dir', dir, '--listen', `127.0.0.1:${port}`, '--log-level', 'warn', ...tlsArgs, ...(opts.args ?? [])], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const collect = (s: Buffer) => (output = (output + s.toString('utf8')).slice(-8000));
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
  const scheme = opts.tls ? 'https' : 'http';
  const url = `${scheme}://127.0.0.1:${port}`;
  const stop = async (signal: NodeJS.Signals = 'SIGTERM') => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    return exited;
  };
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`podwire-controlplane exited (${child.exitCode}): ${output}`);
    if (await ready(port, Boolean(opts.tls))) break;
    if (Date.now() > deadline) {
      await stop('SIGKILL');
      throw new Error(`podwire-controlplane not ready within 20 s: ${output}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { url, port, dir, token: fs.readFileSync(path.join(dir, 'admin.token'), 'utf8').trim(), child, log: () => output, stop };
}

async function ready(port: number, tls: boolean): Promise<boolean> {
  const request = tls ? https.request : http.request;
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/readyz', rejectUnauthorized: false, timeout: 1000 }, (res: http.IncomingMessage) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}
