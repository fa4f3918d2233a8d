// The agent's fast DEL (src/agent/cni-del.ts) through the native client: a DEL is answered once the
// host veth is down (the pod answers nothing from then on), the veths of DELs that came together are
// deleted in one request, and only then are their IPs released; the container's next request waits
// for all of it; an agent killed after answering leaves a journal that the next agent finishes, and
// a veth a later ADD made under the same name is left alone. The agent is test/lib/cni-agent-child.ts
// with its batch held (CNI_AGENT_DEL_BATCH_MS) so the window between answer and deletion is visible.
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { describe, invokePlugin, makePluginDir, netConf, ping, PODWIRE, podNetnsList, reservations, tempDir, veths, type InvokeResult, type Pod } from '../lib/cni.js';
import { clientPluginDir, SKIP_NO_CLIENT, startCniAgent } from '../lib/cni-agent.js';
import { freshNetns, ipJson, SKIP_NOT_ROOT } from '../lib/netns.js';
import { DEL_LINK_GROUP } from '../../src/agent/cni-del.js';

const skip = SKIP_NOT_ROOT || SKIP_NO_CLIENT;
const HOLD_MS = 3000;

t.test('fast DEL: pod cut off at the answer, veths deleted together, IPs released after; journal finished by the next agent', { skip, timeout: 180_000 }, async (t) => {
  const top = t; // agents restarted in subtests live until the end
  const node = freshNetns(t, 'fdel');
  const dir = tempDir(t, 'fdel');
  const journal = path.join(dir, 'cni-del');
  let agent = await startCniAgent(t, node, dir, { bare: true, delBatchMs: HOLD_MS });
  const fastBin = clientPluginDir(t);
  const nodeBin = makePluginDir(t);
  const dataDir = path.join(dir, 'ipam');
  const conf = { ...netConf(PODWIRE, { dataDir, cniVersion: '1.1.0' }), agentSocket: agent.socket };
  const call = (command: string, pod: Pod, bin = fastBin, config: object = conf) =>
    invokePlugin({ pluginDir: bin, hostNetns: node, type: 'podwire', command, config, containerId: pod.containerId, netns: pod.path, ifname: 'eth0' });
  const ok = (r: InvokeResult, what: string) => t.equal(r.exitCode, 0, `${what}: ${describe(r)}`);
  const ipOf = (r: InvokeResult) => (r.result.ips[0].address as string).split('/')[0];
  const hostVethOf = (r: InvokeResult) => r.result.interfaces.find((i: any) => !i.sandbox && /^pw[0-9a-f]{12}$/.test(i.name)).name as string;
  const hostLink = (name: string) => ipJson(node, ['link', 'show']).find((l: any) => l.ifname === name);
  const journalEntries = () => (fs.existsSync(journal) ? fs.readdirSync(journal) : []);

  const [a, b, c] = podNetnsList(t, 3, 'fd');
  const addA = await call('ADD', a);
  const addB = await call('ADD', b);
  const addC = await call('ADD', c);
  for (const [r, w] of [[addA, 'ADD a'], [addB, 'ADD b'], [addC, 'ADD c']] as const) ok(r, w);
  t.ok(ping(b.name, ipOf(addA)), 'b reaches a before the DEL');

  // a and c deleted together.
  const [delA, delC] = await Promise.all([call('DEL', a), call('DEL', c)]);
  ok(delA, 'DEL a');
  ok(delC, 'DEL c');
  t.notOk(ping(b.name, ipOf(addA)), 'a answers nothing once its DEL was answered');
  const link = hostLink(hostVethOf(addA));
  t.ok(link, 'a\'s host veth still exists (the batch is held), so that ping went to a veth that is down');
  t.notOk(link?.flags.includes('UP'), 'a\'s host veth is down');
  t.equal(link?.group, String(DEL_LINK_GROUP), `in the agent's deletion group ${DEL_LINK_GROUP}`);
  t.equal(reservations(dataDir).length, 3, 'a\'s and c\'s IPs are still reserved: not reusable while their veths exist');
  t.equal(journalEntries().length, 2, 'two journal entries');
  await agent.settled(10_000);
  t.same(veths(node).map((l) => l.ifname), [hostVethOf(addB)], 'a\'s and c\'s veths are gone, b\'s is kept');
  t.same(reservations(dataDir).map((r) => r.ip), [ipOf(addB)], 'then their IPs were released');
  t.same(journalEntries(), [], 'and their journal entries removed');
  t.match((await agent.status()).del, { pending: 0, deleted: 2, batches: 1, failed: 0 }, 'both veths deleted in one request');

  await t.test('the container\'s next request waits for its DEL: a re-ADD right after it converges', async (t) => {
    const del = await call('DEL', b);
    t.equal(del.exitCode, 0, `DEL b: ${describe(del)}`);
    const t0 = Date.now();
    const again = await call('ADD', b);
    t.equal(again.exitCode, 0, `ADD b again at once: ${describe(again)}`);
    t.ok(Date.now() - t0 >= HOLD_MS / 2, `it waited for the DEL's deletion (${Date.now() - t0} ms)`);
    t.ok(ping(node, ipOf(again)), 'b answers again');
    t.equal(veths(node).length, 1, 'one host veth: b\'s new one');
    t.equal(reservations(dataDir).length, 1, 'one reservation');
  });

  await t.test('the agent killed after answering a DEL: the next agent finishes it before serving', async (t) => {
    const del = await call('DEL', b);
    t.equal(del.exitCode, 0, `DEL b: ${describe(del)}`);
    agent.child.kill('SIGKILL');
    await new Promise((r) => agent.child.once('exit', r));
    t.equal(journalEntries().length, 1, 'its journal entry is left');
    t.equal(veths(node).length, 1, 'and its veth (down)');
    t.equal(reservations(dataDir).length, 1, 'and its reservation');
    agent = await startCniAgent(top, node, dir, { bare: true, delBatchMs: HOLD_MS });
    t.equal((await agent.status()).replayed, 1, 'the new agent finished one DEL at start');
    t.same(veths(node), [], 'no veth left');
    t.same(reservations(dataDir), [], 'no reservation left');
    t.same(journalEntries(), [], 'no journal entry left');
  });

  await t.test('killed again, and the runtime re-ADDs through the Node plugin meanwhile: the next agent leaves that pod alone', async (t) => {
    const add = await call('ADD', c);
    t.equal(add.exitCode, 0, `ADD c: ${describe(add)}`);
    const del = await call('DEL', c);
    t.equal(del.exitCode, 0, `DEL c: ${describe(del)}`);
    agent.child.kill('SIGKILL');
    await new Promise((r) => agent.child.once('exit', r));
    // No agent: the client falls back to the Node plugin. c's netns still has its eth0 (down), so
    // ADD says to DEL first; the runtime does, and the retried ADD converges.
    const first = await call('ADD', c);
    t.match(first, { exitCode: 1, error: { msg: /already has an interface eth0/ } }, `a re-ADD with the old pod end still there: ${describe(first)}`);
    const del2 = await call('DEL', c, nodeBin);
    t.equal(del2.exitCode, 0, `DEL by the Node plugin: ${describe(del2)}`);
    const again = await call('ADD', c);
    t.equal(again.exitCode, 0, `the retried ADD: ${describe(again)}`);
    t.equal(journalEntries().length, 1, 'the killed agent\'s journal entry is still there');
    agent = await startCniAgent(top, node, dir, { bare: true, delBatchMs: HOLD_MS });
    t.equal((await agent.status()).replayed, 0, 'the next agent finished nothing');
    t.same(journalEntries(), [], 'and dropped the entry');
    t.same(veths(node).map((l) => l.ifname), [hostVethOf(again)], 'c\'s new veth is kept');
    t.same(reservations(dataDir).map((r) => r.ip), [ipOf(again)], 'and its reservation');
    t.ok(ping(node, ipOf(again)), 'c answers');
    const last = await call('DEL', c);
    t.equal(last.exitCode, 0, `DEL c: ${describe(last)}`);
    await agent.settled(10_000);
    t.same(veths(node), [], 'nothing left at the end');
    t.same(reservations(dataDir), [], 'no reservation left at the end');
  });

  await t.test('the agent killed during a DEL, before answering: error 11; the retried DEL converges; the next agent finishes nothing twice', async (t) => {
    const dir2 = tempDir(t, 'holddel');
    let held = await startCniAgent(top, node, dir2, { bare: true, holdMs: 20_000, delBatchMs: 20_000 });
    const conf2 = { ...conf, agentSocket: held.socket };
    const pod = { ...podNetnsList(t, 1, 'hd')[0]!, containerId: `holddel${'0'.repeat(57)}` };
    const add = await call('ADD', pod, fastBin, conf2);
    t.equal(add.exitCode, 0, `ADD: ${describe(add)}`);
    const pending = call('DEL', pod, fastBin, conf2);
    const deadline = Date.now() + 20_000;
    while (!held.out().includes('holding') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    t.ok(held.out().includes('holding'), 'the agent detached the veth and holds its answer');
    t.equal(hostLink(hostVethOf(add))?.group, String(DEL_LINK_GROUP), 'the veth is down in the deletion group');
    held.child.kill('SIGKILL');
    const del = await pending;
    t.match(del, { exitCode: 1, error: { code: 11 } }, `DEL: ${describe(del)}`);
    const retry = await call('DEL', pod, fastBin, conf2);
    t.equal(retry.exitCode, 0, `the runtime's retry (the Node plugin: no agent answers): ${describe(retry)}`);
    t.same(veths(node), [], 'no veth left');
    t.same(reservations(dataDir), [], 'no reservation left');
    held = await startCniAgent(top, node, dir2, { bare: true });
    t.equal((await held.status()).replayed, 1, 'the next agent took the journal entry (nothing left to delete or release)');
    t.same(fs.readdirSync(path.join(dir2, 'cni-del')), [], 'and removed it');
    t.same(veths(node), [], 'still no veth');
    t.same(reservations(dataDir), [], 'still no reservation');
  });
});
