// Lab pods get the kubelet's resolv.conf (issue 16 item 4): the CNI plugin's result carries the
// cluster's DNS settings (from the agent's conflist fields, the cluster config's clusterDNS and
// clusterDomain), the lab writes them to /etc/netns/<pod netns>/resolv.conf, and what a pod sees
// inside `ip netns exec` and `podwire lab exec` is that file. Teardown and the stale-lab cleanup
// remove the lab's own /etc/netns entries and nothing else. (No DNS server answers yet: names are
// not resolved here.)
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { createCluster, destroyCluster } from '../../src/lab/cluster.js';
import { leakCheck, teardownState, type LabState } from '../../src/lab/lab.js';
import { NETNS_ETC_DIR } from '../../src/lab/resolv-conf.js';
import { SKIP_NOT_ROOT } from '../lib/netns.js';
import { cliRunner } from '../lib/cli.js';

const KUBELET_RESOLV_CONF = 'search default.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n';
const podwire = cliRunner(60_000);

t.test('every lab pod\'s resolv.conf is the kubelet\'s, seen inside the pod, removed with the lab', { skip: SKIP_NOT_ROOT }, async (t) => {
  const c = await createCluster({ nodes: 1, backend: 'vxlan', podsPerNode: 2 });
  let destroyed = false;
  t.teardown(() => {
    if (!destroyed) destroyCluster(c);
  });
  const conflist = JSON.parse(fs.readFileSync(path.join(c.nodes[0]!.dir, 'net.d', '10-podwire.conflist'), 'utf8'));
  t.match(conflist.plugins[0], { type: 'podwire', clusterDNS: '10.96.0.10', clusterDomain: 'cluster.local' }, 'the agent\'s conflist carries the cluster config\'s DNS settings');
  for (const pod of c.pods) {
    const file = path.join(NETNS_ETC_DIR, pod.netns, 'resolv.conf');
    t.equal(fs.readFileSync(file, 'utf8'), KUBELET_RESOLV_CONF, `${file}: the kubelet's content`);
    const inside = spawnSync('ip', ['netns', 'exec', pod.netns, 'cat', '/etc/resolv.conf'], { encoding: 'utf8' });
    t.equal(inside.status, 0, inside.stderr);
    t.equal(inside.stdout, KUBELET_RESOLV_CONF, `${pod.name}: ip netns exec sees it as /etc/resolv.conf`);
  }
  const pod = c.pods[0]!;
  const viaCli = podwire(['lab', 'exec', '--lab', c.lab.prefix, pod.name, '--', 'cat', '/etc/resolv.conf']);
  t.equal(viaCli.code, 0, viaCli.stderr);
  t.equal(viaCli.stdout, KUBELET_RESOLV_CONF, 'podwire lab exec POD -- cat /etc/resolv.conf');
  const ns = podwire(['lab', 'exec', '--lab', c.lab.prefix, pod.name, '--', 'ip', '-4', '-o', 'addr', 'show', 'eth0']);
  t.match(ns.stdout, new RegExp(`inet ${pod.ip.replace(/\./g, '\\.')}/`), 'lab exec still runs in the pod\'s netns');
  const missing = podwire(['lab', 'exec', '--lab', c.lab.prefix, pod.name, '--', 'no-such-command-pw']);
  t.equal(missing.code, 127, 'a command that is not there: 127');
  t.equal(fs.readFileSync('/etc/resolv.conf', 'utf8') === KUBELET_RESOLV_CONF, false, 'the machine\'s own /etc/resolv.conf is untouched');

  const dirs = c.pods.map((p) => path.join(NETNS_ETC_DIR, p.netns));
  const leaks = destroyCluster(c);
  destroyed = true;
  t.same(leaks, [], 'teardown: nothing left');
  for (const dir of dirs) t.notOk(fs.existsSync(dir), `${dir} removed by the teardown`);
});

t.test('the stale-lab cleanup removes only the lab\'s own /etc/netns entries', { skip: SKIP_NOT_ROOT }, async (t) => {
  const id = randomBytes(3).toString('hex');
  const prefix = `pw-s${id}-`;
  const own = path.join(NETNS_ETC_DIR, `${prefix}node1-p1`);
  const other = path.join(NETNS_ETC_DIR, `pw-o${id}-node1-p1`);
  t.teardown(() => {
    fs.rmSync(own, { recursive: true, force: true });
    fs.rmSync(other, { recursive: true, force: true });
  });
  for (const dir of [own, other]) {
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'resolv.conf'), KUBELET_RESOLV_CONF);
  }
  // What `podwire lab down --prefix P` does for a lab whose state file is gone (killed -9).
  const stale = { prefix, underlayNetns: '', underlayCidr: '', nodes: [], procs: [], createdAt: '' } as LabState;
  t.same(leakCheck(stale), [`dir ${own}`], 'the leak check reports it');
  teardownState(stale);
  t.notOk(fs.existsSync(own), 'its own entry removed');
  t.ok(fs.existsSync(path.join(other, 'resolv.conf')), 'another lab\'s entry kept');
  t.same(leakCheck(stale), []);
});
