// Unix sockets podwire serves (the agent's local API; the control plane's --unix-socket uses the
// same src/http/private-socket.ts, see test/integration/controlplane-private-files.test.ts) are
// created 0600, not created with the umask's mode and chmod'ed afterwards.
import t, { type Test } from 'tap';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { ApiClient } from '../../src/client/api-client.js';
import { startLocalApi } from '../../src/agent/local-api.js';

const mode = (file: string): number => fs.statSync(file).mode & 0o777;

/** Under umask 0, with fs.chmodSync recording the mode each path had just before it was chmod'ed. */
function underUmask0(t: Test): { seen: Map<string, number>; dir: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pw-sock-'));
  const previous = process.umask(0);
  const chmod = fs.chmodSync;
  const seen = new Map<string, number>();
  fs.chmodSync = ((p: fs.PathLike, m: fs.Mode) => {
    if (typeof p === 'string' && fs.existsSync(p)) seen.set(p, mode(p));
    chmod(p, m);
  }) as typeof fs.chmodSync;
  t.teardown(() => {
    fs.chmodSync = chmod;
    process.umask(previous);
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return { seen, dir };
}

t.test("the agent's local API socket is 0600 from the start (umask 0)", async (t) => {
  const { seen, dir } = underUmask0(t);
  const socketPath = path.join(dir, 'agent.sock');
  const client = { request: async () => ({}) } as unknown as ApiClient;
  const app = await startLocalApi({ socketPath, client, state: () => ({}) as never });
  t.teardown(() => app.close());
  if (seen.has(socketPath)) t.equal(seen.get(socketPath)!.toString(8), '600', 'the socket was already 0600 before any chmod');
  t.equal(mode(socketPath).toString(8), '600', 'and is 0600');
  const status = await new Promise<string>((resolve, reject) => {
    const c = net.connect(socketPath, () => c.end('GET /v1/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'));
    let out = '';
    c.on('data', (b) => (out += b.toString())).on('end', () => resolve(out)).on('error', reject);
  });
  t.match(status, /^HTTP\/1\.1 200/, 'it serves');
  t.equal(process.umask(), 0, 'the process umask is restored after listen');
});
