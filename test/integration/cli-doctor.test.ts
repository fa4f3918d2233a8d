// `podwire doctor --lab PREFIX` against a real 2-node lab: healthy → no error finding, exit 0;
// faults seeded by hand in node1's netns (forwarding off, strict rp_filter, cni0's MTU and address changed, a peer
// route, neighbour and FDB entry deleted, our nftables table deleted, a reservation no container
// holds, a second conflist written with echo into the node's CNI conf dir, first by name) → each
// check id named with its fix, exit 1; repaired
// (the route with the fix's own command) → clean again; node2's agent killed → agent-down.
// The agent repairs routes and nftables on its resyncs: a fault it repaired before doctor looked
// is seeded again (at most 3 times), so the test checks what doctor says while the fault is there.
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { waitFor } from '../../src/lab/cluster.js';
import { withCluster } from '../lib/lab-cluster.js';
import { isAlive } from '../../src/lab/procs.js';
import { readLabStates } from '../../src/lab/lab.js';
import type { Node } from '../../src/api/objects.js';
import type { DoctorReport, Finding } from '../../src/cli/debug/doctor.js';
import { SKIP_NOT_ROOT } from '../lib/netns.js';
import { cliRunner } from '../lib/cli.js';

const podwire = cliRunner(30_000);

function sh(args: string[]): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(args[0]!, args.slice(1), { encoding: 'utf8', timeout: 15_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const errorsOf = (r: DoctorReport) => r.findings.filter((f) => f.severity === 'error');

t.test('podwire doctor --lab: healthy, seeded faults with fixes, repaired, an agent down', { skip: SKIP_NOT_ROOT }, async (t) => {
  const c = await withCluster(t, { nodes: 2, backend: 'vxlan', podsPerNode: 1 });
  const prefix = c.lab.prefix;
  const [n1, n2] = c.nodes as [typeof c.nodes[0], typeof c.nodes[0]];
  const doctor = (...extra: string[]) => {
    const r = podwire(['doctor', '--lab', prefix, '-o', 'json', ...extra]);
    return { ...r, report: JSON.parse(r.stdout || '{}') as DoctorReport };
  };

  const ok = await waitFor('doctor healthy', () => {
    const r = doctor();
    return r.code === 0 ? r : undefined;
  }, 20_000);
  t.same(Object.keys(ok.report).sort(), ['findings', 'healthy', 'summary']);
  t.equal(ok.report.healthy, true);
  t.same(errorsOf(ok.report), [], `a healthy lab has no error finding (${ok.stdout})`);
  t.equal(ok.report.summary.nodes, 2);
  for (const f of ok.report.findings) t.same(Object.keys(f).sort(), ['check', 'fix', 'message', 'node', 'severity'], `${f.check}: fields`);
  const text = podwire(['doctor', '--lab', prefix]);
  t.equal(text.code, 0, text.stderr);
  t.match(text.stdout, /2 nodes checked, 0 errors, \d+ warnings?: healthy$/m);

  // The faults, all on node1.
  const ns = n1.netns;
  const peerCidr = (await c.admin.get<Node>({ plural: 'nodes', name: n2.name })).spec.podCIDR!;
  const ownCidr = (await c.admin.get<Node>({ plural: 'nodes', name: n1.name })).spec.podCIDR!;
  const ipamNet = fs.readdirSync(path.join(n1.dir, 'ipam'), { withFileTypes: true }).find((d) => d.isDirectory())!.name;
  const leakIp = ownCidr.replace(/0\/24$/, '250');
  const leakFile = path.join(n1.dir, 'ipam', ipamNet, leakIp);
  const neigh = sh(['ip', '-n', ns, 'neigh', 'show', 'dev', 'podwire.1']).stdout.trim().split('\n')[0]!.split(' ');
  const fdb = sh(['bridge', '-n', ns, 'fdb', 'show', 'dev', 'podwire.1']).stdout.split('\n').find((l) => / dst /.test(l))!.split(' ');
  const gateway = ownCidr.replace(/0\/24$/, '1/24');
  // The lab agents install their conflist into NODE_DIR/net.d (--cni-conf-dir): another one that
  // sorts first is what a runtime would take.
  const confDir = path.join(n1.dir, 'net.d');
  const otherConf = path.join(confDir, '05-other.conflist');
  const rpAll = sh(['ip', 'netns', 'exec', ns, 'sysctl', '-n', 'net.ipv4.conf.all.rp_filter']).stdout.trim();
  const seed = {
    'rp-filter': () => sh(['ip', 'netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv4.conf.all.rp_filter=1']),
    mtu: () => sh(['ip', '-n', ns, 'link', 'set', 'cni0', 'mtu', '1400']),
    'neigh-stale': () => sh(['ip', '-n', ns, 'neigh', 'del', neigh[0]!, 'dev', 'podwire.1']),
    'fdb-stale': () => sh(['bridge', '-n', ns, 'fdb', 'del', fdb[0]!, 'dev', 'podwire.1', 'dst', fdb[2]!]),
    'podcidr-mismatch': () => sh(['ip', '-n', ns, 'addr', 'del', gateway, 'dev', 'cni0']),
    'ip-forward': () => sh(['ip', 'netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv4.ip_forward=0']),
    // Per-netns (Linux >= 5.3): only node1's netns changes.
    'br-netfilter': () => sh(['ip', 'netns', 'exec', ns, 'sysctl', '-qw', 'net.bridge.bridge-nf-call-iptables=0']),
    'route-missing': () => sh(['ip', '-n', ns, 'route', 'del', peerCidr]),
    'nft-table-missing': () => sh(['ip', 'netns', 'exec', ns, 'nft', 'delete', 'table', 'inet', 'podwire']),
    'cni-config-conflict': () => sh(['sh', '-c', `echo '{"cniVersion":"1.0.0","name":"other","plugins":[{"type":"bridge","bridge":"other0"}]}' > ${otherConf}`]),
    'ipam-leak': () => {
      fs.writeFileSync(leakFile, 'doctor-test-container-0000\neth0\n');
      const old = new Date(Date.now() - 120_000);
      fs.utimesSync(leakFile, old, old);
      return { code: 0, stdout: '', stderr: '' };
    },
  } as const;
  const ids = Object.keys(seed) as (keyof typeof seed)[];
  for (const id of ids) t.equal(seed[id]().code, 0, `seeded ${id}`);
  let found: Map<string, Finding> = new Map();
  let bad = doctor();
  for (let attempt = 1; ; attempt++) {
    found = new Map(bad.report.findings.filter((f) => f.node === n1.name).map((f) => [f.check, f]));
    const missing = ids.filter((id) => !found.has(id));
    if (!missing.length || attempt === 3) break;
    t.comment(`repaired by the agent before doctor looked: ${missing.join(', ')}; seeding again`);
    for (const id of missing) seed[id]();
    bad = doctor();
  }
  t.equal(bad.code, 1, 'error findings: exit 1');
  t.equal(bad.report.healthy, false);
  for (const id of ids) {
    const f = found.get(id);
    t.ok(f, `doctor names ${id}`);
    t.ok(f && f.fix.length > 10, `${id} has a fix: ${f?.fix}`);
  }
  t.match(found.get('ip-forward'), { severity: 'error', message: /ip_forward is 0/, fix: /sysctl -w net\.ipv4\.ip_forward=1/ });
  t.match(found.get('br-netfilter'), { severity: 'error', message: /bridge-nf-call-iptables=0: replies bridged on cni0 skip conntrack/, fix: /sysctl -w net\.bridge\.bridge-nf-call-iptables=1/ });
  t.match(found.get('route-missing'), { severity: 'error', message: new RegExp(peerCidr.replace(/[./]/g, '\\$&')) });
  t.match(found.get('nft-table-missing'), { severity: 'error', message: /inet podwire/ });
  t.match(found.get('rp-filter'), { severity: 'warning', message: /strict reverse-path filtering \(rp_filter=1\) on cni0/, fix: /rp_filter=2/ });
  t.match(found.get('mtu'), { severity: 'error', message: /cni0 mtu 1400, want the pod MTU 1450/ });
  t.match(found.get('neigh-stale'), { severity: 'error', message: new RegExp(`neigh replace ${neigh[0]!.replace(/\./g, '\\.')} `) });
  t.match(found.get('fdb-stale'), { severity: 'error', message: new RegExp(`fdb append ${fdb[0]} dev podwire\\.1 dst ${fdb[2]!.replace(/\./g, '\\.')}`) });
  t.match(found.get('podcidr-mismatch'), { severity: 'error', message: new RegExp(`not the gateway ${gateway.replace(/[./]/g, '\\$&')}`) });
  t.match(found.get('ipam-leak'), { severity: 'warning', message: new RegExp(`${leakIp.replace(/\./g, '\\.')} \\(doctor-test-\\)`) });
  t.match(found.get('cni-config-conflict'), {
    severity: 'error',
    message: new RegExp(`the runtime uses ${otherConf.replace(/[./]/g, '\\$&')} \\(first by name\\), not podwire's 10-podwire\\.conflist`),
    fix: new RegExp(`remove or rename ${otherConf.replace(/[./]/g, '\\$&')} `),
  });
  t.notOk(bad.report.findings.some((f) => f.node === n2.name && f.severity === 'error'), 'node2 stays clean');
  const only2 = doctor('--node', n2.name);
  t.equal(only2.code, 0, '--node node2 alone is healthy');

  // Repair: forwarding and the leak by hand, the route with the fix's own command; the agent's
  // next sync puts back the rest (MTU, address, neighbour, FDB, its nftables table).
  t.equal(sh(['ip', 'netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']).code, 0);
  t.equal(sh(['ip', 'netns', 'exec', ns, 'sysctl', '-qw', 'net.bridge.bridge-nf-call-iptables=1']).code, 0);
  t.equal(sh(['ip', 'netns', 'exec', ns, 'sysctl', '-qw', `net.ipv4.conf.all.rp_filter=${rpAll}`]).code, 0);
  fs.unlinkSync(leakFile);
  t.equal(sh(['rm', otherConf]).code, 0, 'the second conflist removed');
  const routeFix = /ip (route replace [^)]+)/.exec(found.get('route-missing')?.fix ?? '');
  if (routeFix) {
    const r = sh(['ip', '-n', ns, ...routeFix[1]!.split(' ')]);
    t.equal(r.code, 0, `the fix works: ip ${routeFix[1]} ${r.stderr}`);
  }
  const clean = await waitFor('doctor clean again', () => {
    const r = doctor();
    return r.code === 0 ? r : undefined;
  }, 45_000);
  t.same(errorsOf(clean.report), [], 'repaired: no error finding');
  t.notOk(clean.report.findings.some((f) => f.node === n1.name && f.check === 'cni-config-conflict'), 'and no CNI config conflict left');

  // node2's agent stopped by the PID the lab recorded.
  const recorded = readLabStates().find((s) => s.prefix === prefix)!.procs.find((p) => p.what.startsWith(`${n2.netns}: `) && p.what.includes('/src/agent/main.js'))!;
  t.equal(recorded.pid, n2.agent.pid, 'the lab recorded node2\'s agent');
  process.kill(recorded.pid, 'SIGKILL');
  await waitFor('node2 agent gone', () => !isAlive(recorded));
  const down = doctor();
  t.equal(down.code, 1, 'an agent down: exit 1');
  t.match(down.report.findings.filter((f) => f.check === 'agent-down'), [{ severity: 'error', node: n2.name, message: /nothing answers at https:\/\/192\.0\.2\.12:10262 \(through the lab.s forwarder .*agent-https\.sock\)/, fix: /podwire-agent/ }]);

  const unknown = podwire(['doctor', '--lab', prefix, '--node', 'nod2']);
  t.equal(unknown.code, 2, 'an unknown node is a usage error');
  t.match(unknown.stderr, /unknown node "nod2"; did you mean node2/);
  t.equal(podwire(['doctor', '--lab', prefix, '-o', 'yaml']).code, 2);
});
