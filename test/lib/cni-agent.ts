// Starting test/lib/cni-agent-child.ts (the agent's CNI server without the rest of an agent) in a
// test's node netns, and a CNI_PATH dir whose `podwire` is the native client.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { PODWIRE_CNI_MAIN, tempDir } from './cni.js';

interface Teardown {
  teardown(fn: () => void | Promise<void>): void;
}

export const CNI_CLIENT = path.join(path.dirname(PODWIRE_CNI_MAIN), 'podwire-cni-client');
const CHILD = path.resolve(path.dirname(new URL(import.meta.url).pathname), 'cni-agent-child.js');
export const SKIP_NO_CLIENT = fs.existsSync(CNI_CLIENT) ? false : `${CNI_CLIENT} is not built (npm run build needs a C compiler: scripts/bootstrap installs build-essential)`;

export interface TestAgent {
  socket: string;
  child: ChildProcess;
  out: () => string;
  /** CNI requests the server answered (its /v1/status). */
  requests: () => Promise<number>;
  /** Its /v1/status: cniRequests, replayed (journal entries finished at start), del (CniDel stats). */
  status: () => Promise<AgentChildStatus>;
  /** Resolves once no fast DEL is pending (veths deleted, IPs released); throws after `ms`. */
  settled: (ms?: number) => Promise<void>;
}

export interface AgentChildStatus {
  cniRequests: number;
  replayed: number;
  del?: { pending: number; deleted: number; batches: number; failed: number };
}

/** The CNI server in `node` (a pw- netns); `bare`: no control plane (configs without controlPlane). Killed at teardown. */
export async function startCniAgent(t: Teardown, node: string, dir: string, o: { holdMs?: number; bare?: boolean; delBatchMs?: number } = {}): Promise<TestAgent> {
  const env = { ...process.env, ...(o.delBatchMs ? { CNI_AGENT_DEL_BATCH_MS: String(o.delBatchMs) } : {}) };
  const child = spawn('ip', ['netns', 'exec', node, process.execPath, CHILD, dir, String(o.holdMs ?? 0), ...(o.bare ? ['bare'] : [])], { stdio: ['ignore', 'pipe', 'pipe'], env });
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (out += d));
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const deadline = Date.now() + 30_000;
  while (!out.includes('ready')) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`cni-agent-child did not start: ${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const socket = path.join(dir, 'agent.sock');
  const status = () => agentChildStatus(socket);
  const requests = async () => (await status()).cniRequests;
  return { socket, child, out: () => out, requests, status, settled: (ms?: number) => delsSettled(socket, ms) };
}

/** GET /v1/status of a cni-agent-child on its socket. */
export function agentChildStatus(socket: string): Promise<AgentChildStatus> {
  return new Promise((resolve, reject) => {
    http.get({ socketPath: socket, path: '/v1/status' }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d)).on('end', () => resolve(JSON.parse(body) as AgentChildStatus));
    }).on('error', reject);
  });
}

/** Resolves once the cni-agent-child on `socket` has no fast DEL pending; throws after `ms` (default 5 s). */
export async function delsSettled(socket: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const s = await agentChildStatus(socket);
    if (!s.del?.pending) return;
    if (Date.now() > deadline) throw new Error(`fast DELs still pending on ${socket} after ${ms} ms: ${JSON.stringify(s.del)}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A CNI_PATH dir whose `podwire` is the native client (it finds podwire-node beside its real path). */
export function clientPluginDir(t: Teardown): string {
  const dir = tempDir(t, 'client');
  fs.symlinkSync(CNI_CLIENT, path.join(dir, 'podwire'));
  return dir;
}
