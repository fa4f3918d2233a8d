// The agent's side of the CNI fast path without the rest of an agent, for tests: run inside a
// test's node netns (ip netns exec NODE node cni-agent-child.js DIR [hold-ms]), it starts a
// control plane (in memory, on the netns's loopback), registers node-a with podCIDR 10.244.1.0/24,
// and serves the agent's local API on DIR/agent.sock with the node's token and the CNI server
// (POST /v1/cni). GET /v1/status answers {"cniRequests": N}. With hold-ms, an ADD whose
// CNI_CONTAINERID starts with "hold" is answered only after hold-ms (a DEL instead when it starts with "holddel") (the test kills this process
// in between: an agent gone mid-request after doing the work). With a third argument "bare" there
// is no control plane (configs without controlPlane: bench cni's fast-path runs). DELs are the
// agent's fast ones (src/agent/cni-del.ts, journal in DIR/cni-del, replayed at start) unless
// CNI_AGENT_SYNC_DEL=1; CNI_AGENT_DEL_BATCH_MS holds their deletion that long. Prints "ready" once serving.
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { buildServer } from '../../src/controlplane/api/server.js';
import { MemoryStore } from '../../src/controlplane/store/memory.js';
import { ApiClient } from '../../src/client/api-client.js';
import { startLocalApi } from '../../src/agent/local-api.js';
import { CniServer } from '../../src/agent/cni-server.js';
import { CniDel } from '../../src/agent/cni-del.js';
import { executeCni } from '../../src/cni/dispatch.js';
import type { AgentState } from '../../src/agent/agent.js';

const ADMIN = 'pwa_cni-fast-path-admin-0123456789';
const [dir, holdArg, mode] = process.argv.slice(2);
if (!dir) throw new Error('usage: cni-agent-child DIR [hold-ms [bare]]');
const holdMs = Number(holdArg ?? 0);

async function controlPlane() {
  const store = new MemoryStore();
  const cp = buildServer({ store, adminTokens: [ADMIN] });
  await cp.listen({ host: '127.0.0.1', port: 0 });
  const server = `http://127.0.0.1:${(cp.server.address() as AddressInfo).port}`;
  const admin = new ApiClient({ server, token: ADMIN });
  const { token } = (await admin.request('POST', '/api/v1/nodes/node-a/token')) as { token: string };
  await admin.request('POST', '/api/v1/nodes', { metadata: { name: 'node-a' }, spec: { podCIDR: '10.244.1.0/24' } });
  return { server, token, close: () => cp.close() };
}
// bare: pod requests to the control plane fail (nothing listens on port 1); CNI configs of such runs name none.
const cp = mode === 'bare' ? { server: 'http://127.0.0.1:1', token: 'none', close: async () => undefined } : await controlPlane();

const del = process.env.CNI_AGENT_SYNC_DEL === '1' ? undefined : new CniDel({ journalDir: path.join(dir, 'cni-del'), batchMs: Number(process.env.CNI_AGENT_DEL_BATCH_MS ?? 0), onError: (err) => console.error(`CNI DEL: ${err.message}`) });
const replayed = del?.replay() ?? 0;
let handled = 0;
const cni = new CniServer({
  ...(del ? { del } : {}),
  execute: async (vars, stdin, hooks) => {
    const out = await executeCni(vars, stdin, hooks);
    // "holddel…": its DEL is held (after the fast DEL's detach), not its ADD; other "hold…": the ADD.
    const id = vars.CNI_CONTAINERID ?? '';
    const held = id.startsWith('holddel') ? vars.CNI_COMMAND === 'DEL' : id.startsWith('hold') && vars.CNI_COMMAND === 'ADD';
    if (holdMs > 0 && held) {
      console.log(`holding ${vars.CNI_CONTAINERID}`);
      await new Promise((r) => setTimeout(r, holdMs));
    }
    return out;
  },
  onDone: () => handled++,
});
const api = await startLocalApi({
  socketPath: path.join(dir, 'agent.sock'),
  client: new ApiClient({ server: cp.server, token: cp.token }),
  state: () => ({ cniRequests: handled, replayed, del: del?.stats() }) as unknown as AgentState & Record<string, unknown>,
  cni,
});
process.on('SIGTERM', () => {
  void Promise.all([api.close(), cp.close(), del?.drain()]).then(() => {
    del?.close();
    process.exit(0);
  });
});
console.log('ready');
