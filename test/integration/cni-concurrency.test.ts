// 50 ADDs at once into one /24 (50 pod netns, one host netns), as a node does when many pods start
// together: 50 distinct IPs, each on its pod's eth0 and in exactly one reservation file, 50 ports
// on cni0, every pod answering ping from the host netns; then 50 DELs at once leave no veth, no
// reservation and no temp file. The same case for podwire and the reference (podwire delegating to
// host-local adds host-local's own lock and nothing of podwire's; it is left out to keep the file
// under a minute on a 2-core machine). And the same for podwire's fast path: the native client as
// the plugin, every command run by the agent's CNI server in the host netns (all 100 counted there).
import t from 'tap';
import path from 'node:path';
import { freshNetns, SKIP_NOT_ROOT } from '../lib/netns.js';
import { clientPluginDir, SKIP_NO_CLIENT, startCniAgent, type TestAgent } from '../lib/cni-agent.js';
import {
  bridgePorts, describe, inetAddrs, invokePlugin, makePluginDir, netConf, ping, podNetnsList, reservations, SKIP_NO_REFERENCE, strayTmpFiles,
  PODWIRE, REFERENCE, tempDir, veths, type Pod,
} from '../lib/cni.js';

const skip = SKIP_NOT_ROOT || SKIP_NO_REFERENCE;
const PODS = 50;
const TIME_LIMIT_MS = 40_000; // per phase; a healthy run takes a few seconds

for (const [v, fast] of [[PODWIRE, false], [PODWIRE, true], [REFERENCE, false]] as const) {
  t.test(`${v.name}${fast ? ' fast path' : ''}: ${PODS} concurrent ADDs → ${PODS} distinct reachable IPs; ${PODS} concurrent DELs → nothing left`, { skip: skip || (fast && SKIP_NO_CLIENT) }, async (t) => {
    const host = freshNetns(t, 'host');
    const bin = fast ? clientPluginDir(t) : makePluginDir(t);
    const dataDir = path.join(tempDir(t, 'ipam'), 'ipam');
    let agent: TestAgent | undefined;
    let conf = netConf(v, { dataDir });
    if (fast) {
      agent = await startCniAgent(t, host, tempDir(t, 'agent'), { bare: true });
      conf = { ...conf, agentSocket: agent.socket };
    }
    const pods = podNetnsList(t, PODS);
    const invoke = (command: string, pod: Pod, config: object) =>
      invokePlugin({ pluginDir: bin, hostNetns: host, type: v.type, command, config, containerId: pod.containerId, netns: pod.path, ifname: 'eth0', timeoutMs: TIME_LIMIT_MS });

    let t0 = performance.now();
    const adds = await Promise.all(pods.map((pod) => invoke('ADD', pod, conf)));
    const addMs = performance.now() - t0;
    t.comment(`${PODS} concurrent ADDs: ${Math.round(addMs)} ms (slowest ${Math.round(Math.max(...adds.map((r) => r.ms)))} ms)`);
    t.ok(addMs < TIME_LIMIT_MS, `ADD phase within ${TIME_LIMIT_MS} ms`);
    const failed = adds.flatMap((r, i) => (r.exitCode === 0 ? [] : [`pod ${i}: ${describe(r)}`]));
    t.same(failed, [], 'every ADD succeeded');
    const addresses = adds.map((r) => r.result?.ips?.[0]?.address as string | undefined);
    const ips = addresses.map((a) => a?.split('/')[0]);
    t.equal(new Set(ips.filter(Boolean)).size, PODS, `${PODS} distinct IPs`);

    const wrong = pods.flatMap((pod, i) => {
      const got = inetAddrs(pod.name, 'eth0');
      return got.length === 1 && got[0] === addresses[i] ? [] : [`pod ${i}: result ${addresses[i]}, eth0 has [${got.join(', ')}]`];
    });
    t.same(wrong, [], 'each pod\'s eth0 holds exactly its reported address');
    const files = reservations(dataDir);
    t.same(files.map((f) => f.ip).sort(), ips.filter((x): x is string => !!x).sort(), 'one reservation file per reported IP, no other');
    t.same(
      files.filter((f) => !pods.some((p, i) => ips[i] === f.ip && f.owner.includes(p.containerId))).map((f) => f.ip),
      [],
      'each file names the container that got the IP',
    );
    t.equal(bridgePorts(host).length, PODS, `${PODS} ports on cni0`);
    const unreachable = ips.filter((ip) => !ip || !ping(host, ip));
    t.same(unreachable, [], 'every pod answers ping from the host netns');

    t0 = performance.now();
    const dels = await Promise.all(pods.map((pod, i) => invoke('DEL', pod, adds[i].result ? { ...conf, prevResult: adds[i].result } : conf)));
    const delMs = performance.now() - t0;
    t.comment(`${PODS} concurrent DELs: ${Math.round(delMs)} ms`);
    t.ok(delMs < TIME_LIMIT_MS, `DEL phase within ${TIME_LIMIT_MS} ms`);
    t.same(dels.flatMap((r, i) => (r.exitCode === 0 ? [] : [`pod ${i}: ${describe(r)}`])), [], 'every DEL succeeded');
    // The fast path answers a DEL once the pod is cut off and deletes the veths after (cni-del.ts).
    if (agent) {
      await agent.settled(30_000);
      t.ok(((await agent.status()).del?.batches ?? 0) < PODS, `the agent deleted the ${PODS} veths in ${(await agent.status()).del?.batches} requests`);
    }
    t.same(veths(host).map((l) => l.ifname), [], 'no veth left in the host netns');
    t.same(reservations(dataDir), [], 'no reservation left');
    t.same(strayTmpFiles(dataDir), [], 'no temp file left');
    if (agent) t.equal(await agent.requests(), 2 * PODS, `the agent ran all ${2 * PODS} commands (none fell back to the Node plugin)`);
  });
}
