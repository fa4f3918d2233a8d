// Switching an agent's --proxy-mode and restarting it removes the other mode's rules and keeps
// the service working; the agent's masquerade and rules of other tables are left alone.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { clusterConnectivity, serviceConnectivity } from '../../src/lab/cluster-probes.js';
import { agentStatus, createEchoService, restartAgent, waitFor, type ClusterNode } from '../../src/lab/cluster.js';
import { withCluster } from '../lib/lab-cluster.js';
import { SKIP_NOT_ROOT } from '../lib/netns.js';

const inNs = (ns: string, cmd: string, args: string[]) => execFileSync('ip', ['netns', 'exec', ns, cmd, ...args], { encoding: 'utf8' });
const nftProxyChains = (ns: string) => (inNs(ns, 'nft', ['list', 'table', 'inet', 'podwire']).match(/chain (svc|ep)-[\w-]+/g) ?? []).length;
const iptProxyChains = (ns: string) => inNs(ns, 'iptables-save', []).split('\n').filter((l) => /^:PODWIRE-/.test(l) && !l.startsWith(':PODWIRE-POSTRTG')).length;

async function switchMode(node: ClusterNode, mode: 'nftables' | 'iptables'): Promise<void> {
  node.agent.kill('SIGTERM');
  await new Promise((r) => node.agent.once('exit', r));
  const i = node.agentArgs.indexOf('--proxy-mode');
  node.agentArgs[i + 1] = mode;
}

t.test('proxy mode switch nftables → iptables → nftables leaves no stale rules', { skip: SKIP_NOT_ROOT }, async (t) => {
  const c = await withCluster(t, { nodes: 2, backend: 'vxlan', podsPerNode: 1 });
  const n1 = c.nodes[0]!;
  inNs(n1.netns, 'nft', ['add table ip other; add chain ip other keep { type filter hook forward priority 0; }; add rule ip other keep counter']);
  const foreign = () => inNs(n1.netns, 'nft', ['list', 'table', 'ip', 'other']).replace(/packets \d+ bytes \d+/g, '');
  const foreignBefore = foreign();
  const svc = await createEchoService(c);
  const ip = svc.spec.clusterIP!;
  const nodePort = svc.spec.ports![0]!.nodePort!;
  t.ok(nftProxyChains(n1.netns) > 0, 'nftables mode: service chains in inet podwire');
  t.equal(iptProxyChains(n1.netns), 0, 'and no PODWIRE-* iptables chains');

  for (const mode of ['iptables', 'nftables'] as const) {
    await switchMode(n1, mode);
    restartAgent(c, n1);
    await waitFor(`node1 synced in ${mode} mode`, async () => {
      const st = (await agentStatus(n1)) as { proxy?: { mode: string; endpoints: number; lastSync?: { error?: string } } };
      return st.proxy?.mode === mode && st.proxy.endpoints >= c.pods.length && st.proxy.lastSync && !st.proxy.lastSync.error;
    }, 30_000);
    // The other mode's rules go once this one has synced.
    await waitFor(`${mode}: the other mode's rules are gone`, () => (mode === 'iptables' ? nftProxyChains(n1.netns) === 0 : iptProxyChains(n1.netns) === 0), 10_000);
    t.ok(mode === 'iptables' ? iptProxyChains(n1.netns) > 0 : nftProxyChains(n1.netns) > 0, `${mode} mode: its own rules are in place`);
    t.match(inNs(n1.netns, 'nft', ['list', 'chain', 'inet', 'podwire', 'pod-masquerade']), /masquerade/, `${mode}: the agent's pod masquerade chain is untouched`);
    const results = [...(await serviceConnectivity(c, ip, nodePort)), ...(await clusterConnectivity(c))];
    t.same(results.filter((r) => !r.ok).map((r) => `${r.from}->${r.to}: ${r.detail}`), [], `${mode}: every service and pod path works`);
  }
  t.equal(foreign(), foreignBefore, 'a foreign nft table is untouched by both modes');
});
