// Crash safety (podwire only): kill -9 an ADD at a random instant, then DEL that container as a
// runtime would; nothing may leak (reservation file, host veth, pod interface, temp file of an
// atomic write), and a final GC with an empty valid list leaves nothing either. The kill instants
// are spread over the whole run of an ADD, measured first on this machine (process start included).
// The last few killed ADDs get no DEL at all, as when a runtime dies too: GC alone must clean them.
import t from 'tap';
import path from 'node:path';
import { freshNetns, SKIP_NOT_ROOT } from '../lib/netns.js';
import {
  CniRuntime, describe, describeRun, eventually, invokePlugin, linkNames, makePluginDir, netConf, PODWIRE, podNetns, podNetnsList, reservations,
  strayTmpFiles, tempDir, veths, type NetworkConfigList,
} from '../lib/cni.js';

const ITERATIONS = 15;
const GC_ONLY = 3; // the last iterations get no DEL: the final GC alone must clean up after them

t.test('podwire: kill -9 during ADD at random points, then DEL → no leaked IP, veth or temp file; GC [] leaves nothing', { skip: SKIP_NOT_ROOT }, async (t) => {
  const host = freshNetns(t, 'host');
  const bin = makePluginDir(t);
  const dataDir = path.join(tempDir(t, 'ipam'), 'ipam');
  const conf = netConf(PODWIRE, { cniVersion: '1.1.0', dataDir });
  const invoke = (command: string, pod: { containerId: string; path: string }, onSpawn?: (c: import('node:child_process').ChildProcess) => void) =>
    invokePlugin({ pluginDir: bin, hostNetns: host, type: 'podwire', command, config: conf, containerId: pod.containerId, netns: pod.path, ifname: 'eth0', onSpawn });

  // How long one ADD takes here, so the kills cover it from process start to the result.
  const warm = podNetns(t, 'warm');
  const probe = await invoke('ADD', warm);
  if (!t.equal(probe.exitCode, 0, `probe ADD ${describe(probe)}`)) return;
  const probeDel = await invoke('DEL', warm);
  t.equal(probeDel.exitCode, 0, `probe DEL ${describe(probeDel)}`);
  const windowMs = Math.max(150, Math.round(probe.ms * 1.2));
  t.comment(`one ADD takes ${Math.round(probe.ms)} ms here; kills spread over 0-${windowMs} ms`);

  const pods = podNetnsList(t, ITERATIONS, 'k');
  const outcomes: string[] = [];
  for (const [i, pod] of pods.entries()) {
    // Stratified: iteration i lands in slice i of the window, at a random point inside it.
    const slot = i < ITERATIONS - GC_ONLY ? i / (ITERATIONS - GC_ONLY) : (i - ITERATIONS + GC_ONLY) / GC_ONLY;
    const width = 1 / (i < ITERATIONS - GC_ONLY ? ITERATIONS - GC_ONLY : GC_ONLY);
    const delay = Math.round((slot + Math.random() * width) * windowMs);
    let timer: NodeJS.Timeout | undefined;
    const add = await invoke('ADD', pod, (child) => {
      timer = setTimeout(() => child.kill('SIGKILL'), delay);
    });
    clearTimeout(timer);
    outcomes.push(`${delay}ms:${add.signal === 'SIGKILL' ? 'killed' : add.exitCode === 0 ? 'completed' : `exit ${add.exitCode}`}`);
    if (add.signal !== 'SIGKILL') t.equal(add.exitCode, 0, `iteration ${i}: an ADD that was not killed succeeded (${describe(add)})`);

    if (i >= ITERATIONS - GC_ONLY) continue;
    const del = await invoke('DEL', pod);
    t.equal(del.exitCode, 0, `iteration ${i} (kill at ${delay} ms): DEL succeeds (${describe(del)})`);
    t.same(reservations(dataDir).filter((r) => r.owner.includes(pod.containerId)).map((r) => r.ip), [], `iteration ${i}: no reservation left`);
    t.same(veths(host).map((l) => l.ifname), [], `iteration ${i}: no host veth left`);
    t.ok(await eventually(() => linkNames(pod.name).join() === 'lo', 2000), `iteration ${i}: only lo in the pod (${linkNames(pod.name).join(',')})`);
    t.same(strayTmpFiles(dataDir), [], `iteration ${i}: no temp file left`);
  }
  t.comment(`kill instants and outcomes: ${outcomes.join(' ')}`);
  t.ok(outcomes.some((o) => o.endsWith('killed')), 'at least one ADD was really killed');

  const list: NetworkConfigList = (({ cniVersion, name, ...plugin }) => ({ cniVersion, name, plugins: [plugin] }))(conf);
  const gc = await new CniRuntime(bin, host).gcList(list, []);
  t.ok(gc.ok, `final GC []: ${describeRun(gc)}`);
  for (const pod of pods.slice(ITERATIONS - GC_ONLY)) {
    t.ok(await eventually(() => linkNames(pod.name).join() === 'lo', 2000), `GC-only pod: only lo left (${linkNames(pod.name).join(',')})`);
  }
  t.same(reservations(dataDir), [], 'after GC: no reservation');
  t.same(veths(host), [], 'after GC: no veth');
  t.same(strayTmpFiles(dataDir), [], 'after GC: no temp file');
});
