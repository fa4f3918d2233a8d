// The vm tier's own check that it runs where it should: inside the kernel VM (scripts/kernel-vm),
// whose Debian kernel has what this host's lacks (IPVS with its schedulers, dummy links), and
// whose netns + veth datapath works. Each check fails, naming what is missing, anywhere else.
import fs from 'node:fs';
import { execFileSync } from 'node:child_process';
import t from 'tap';
import { freshNetns, haveCommand, ipJson, run, SKIP_NOT_ROOT } from '../lib/netns.js';

const WHERE = process.env.PODWIRE_KERNEL_VM === '1'
  ? 'inside the kernel VM'
  : 'not inside the kernel VM (PODWIRE_KERNEL_VM unset): the vm tier runs there, `npm run test:vm`';
const SCHEDULERS = ['rr', 'wrr', 'lc', 'sh', 'mh'];

t.test('IPVS is in the kernel, with the rr wrr lc sh mh schedulers, per netns', { skip: SKIP_NOT_ROOT }, async (t) => {
  t.ok(fs.existsSync('/proc/net/ip_vs'), `/proc/net/ip_vs exists (ip_vs loaded; ${WHERE})`);
  t.ok(haveCommand('ipvsadm'), 'ipvsadm is installed (scripts/bootstrap installs it)');
  const ns = freshNetns(t, 'ipvs');
  SCHEDULERS.forEach((s, i) => {
    try {
      run(ns, 'ipvsadm', ['-A', '-t', `10.96.0.${10 + i}:80`, '-s', s]);
    } catch (err) {
      t.fail(`ipvsadm -A -s ${s} in ${ns}: ${(err as { stderr?: string }).stderr?.trim() || (err as Error).message} (${WHERE})`);
    }
  });
  const listed = run(ns, 'ipvsadm', ['-Ln']);
  for (const [i, s] of SCHEDULERS.entries()) {
    t.match(listed, new RegExp(`TCP\\s+10\\.96\\.0\\.${10 + i}:80 ${s}\\b`), `virtual service with scheduler ${s} listed in ${ns}`);
  }
  const root = execFileSync('ipvsadm', ['-Ln'], { encoding: 'utf8' });
  t.notMatch(root, /10\.96\.0\.1[0-4]:80/, 'the netns services are not in the root namespace');
});

t.test('a dummy link in a pw- netns', { skip: SKIP_NOT_ROOT }, async (t) => {
  const ns = freshNetns(t, 'dummy');
  try {
    run(ns, 'ip', ['link', 'add', 'pwdummy0', 'type', 'dummy']);
  } catch (err) {
    t.fail(`ip link add pwdummy0 type dummy in ${ns}: ${(err as { stderr?: string }).stderr?.trim() || (err as Error).message} (${WHERE})`);
    return;
  }
  run(ns, 'ip', ['addr', 'add', '10.96.0.1/32', 'dev', 'pwdummy0']);
  run(ns, 'ip', ['link', 'set', 'pwdummy0', 'up']);
  const [link] = ipJson(ns, ['link', 'show', 'dev', 'pwdummy0']);
  t.equal(link?.linkinfo?.info_kind, 'dummy', 'ip -d link reports kind dummy');
  t.ok(ipJson(ns, ['addr', 'show', 'dev', 'pwdummy0'])[0].addr_info.some((a: any) => a.local === '10.96.0.1'), 'address bound on the dummy link');
});

t.test('a veth pair between two pw- netns carries a ping', { skip: SKIP_NOT_ROOT }, async (t) => {
  const a = freshNetns(t, 'a');
  const b = freshNetns(t, 'b');
  run(a, 'ip', ['link', 'add', 'pwva', 'type', 'veth', 'peer', 'name', 'pwvb', 'netns', b]);
  run(a, 'ip', ['addr', 'add', '10.250.0.1/30', 'dev', 'pwva']);
  run(b, 'ip', ['addr', 'add', '10.250.0.2/30', 'dev', 'pwvb']);
  run(a, 'ip', ['link', 'set', 'pwva', 'up']);
  run(b, 'ip', ['link', 'set', 'pwvb', 'up']);
  let out = '';
  try {
    out = run(a, 'ping', ['-c', '2', '-W', '5', '10.250.0.2'], undefined, 30_000);
  } catch (err) {
    out = `${(err as { stdout?: string }).stdout ?? ''}${(err as Error).message}`;
  }
  t.match(out, /2 received/, `ping 10.250.0.2 from ${a} over the veth pair: ${out.trim().split('\n').pop()}`);
});
