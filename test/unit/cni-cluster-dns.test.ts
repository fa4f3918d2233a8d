// The CNI result's dns for cluster pods: from the network config's clusterDNS/clusterDomain and the
// pod's namespace (CNI_ARGS K8S_POD_NAMESPACE), as the kubelet's ClusterFirst; an explicit dns wins.
import t, { type Test } from 'tap';
import { parseConfig } from '../../src/cni/config.js';
import { parseCniArgs } from '../../src/cni/env.js';
import { CniError } from '../../src/cni/errors.js';
import { clusterFirstDns, podNamespace } from '../../src/cni/cluster-dns.js';
import { resultDns } from '../../src/cni/add.js';

const base = { cniVersion: '1.0.0', name: 'pwnet', type: 'podwire', ipam: { type: 'podwire', ranges: [[{ subnet: '10.244.1.0/24' }]] } };
const conf = (over: Record<string, unknown> = {}) => parseConfig(JSON.stringify({ ...base, ...over }));
const args = (text: string) => ({ args: parseCniArgs(text) });

function refused(t: Test, fn: () => unknown, code: number, message: RegExp, what: string): void {
  try {
    fn();
    t.fail(`${what}: accepted`);
  } catch (e) {
    t.ok(e instanceof CniError, what);
    t.equal((e as CniError).code, code, `${what}: error ${code}`);
    t.match((e as Error).message, message, what);
  }
}

t.test('clusterFirstDns: the kubelet\'s search path and ndots', async (t) => {
  t.same(clusterFirstDns({ server: '10.96.0.10', domain: 'cluster.local' }, 'default'), {
    nameservers: ['10.96.0.10'],
    search: ['default.svc.cluster.local', 'svc.cluster.local', 'cluster.local'],
    options: ['ndots:5'],
  });
  t.same(clusterFirstDns({ server: 'fd00:10:96::a', domain: 'corp.example' }, 'shop').search, ['shop.svc.corp.example', 'svc.corp.example', 'corp.example']);
});

t.test('config fields clusterDNS and clusterDomain', async (t) => {
  t.same(conf({ clusterDNS: '10.96.0.10', clusterDomain: 'cluster.local' }).clusterDns, { server: '10.96.0.10', domain: 'cluster.local' });
  t.same(conf({ clusterDNS: '10.96.0.10' }).clusterDns, { server: '10.96.0.10', domain: 'cluster.local' }, 'clusterDomain defaults to cluster.local');
  t.equal(conf({}).clusterDns, undefined, 'neither: no cluster DNS');
  refused(t, () => conf({ clusterDomain: 'cluster.local' }), 7, /clusterDomain needs clusterDNS/, 'clusterDomain alone');
  refused(t, () => conf({ clusterDNS: '10.96.0.x' }), 7, /config field clusterDNS "10\.96\.0\.x" is not an IP address/, 'clusterDNS not an IP');
  refused(t, () => conf({ clusterDNS: ['10.96.0.10'] }), 7, /clusterDNS must be an IP address string/, 'clusterDNS a list');
  refused(t, () => conf({ clusterDNS: '10.96.0.10', clusterDomain: 'Cluster.Local' }), 7, /config field clusterDomain: .*RFC 1123 subdomain/, 'clusterDomain upper case');
  refused(t, () => conf({ clusterDNS: '10.96.0.10', clusterDomain: 'cluster.local.' }), 7, /clusterDomain/, 'clusterDomain with a trailing dot');
  refused(t, () => conf({ clusterDNS: '10.96.0.10', clusterDomain: 5 }), 7, /clusterDomain/, 'clusterDomain a number');
});

t.test('the result\'s dns: explicit dns wins, then the cluster\'s for the pod\'s namespace, then IPAM\'s', async (t) => {
  const cluster = conf({ clusterDNS: '10.96.0.10', clusterDomain: 'cluster.local' });
  t.same(resultDns(cluster, args('K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web-1'), {}), { nameservers: ['10.96.0.10'], search: ['shop.svc.cluster.local', 'svc.cluster.local', 'cluster.local'], options: ['ndots:5'] });
  t.same(resultDns(cluster, args(''), { nameservers: ['1.1.1.1'] }).search, ['default.svc.cluster.local', 'svc.cluster.local', 'cluster.local'], 'no K8S_POD_NAMESPACE: default (over IPAM\'s dns)');
  const explicit = conf({ clusterDNS: '10.96.0.10', dns: { nameservers: ['192.0.2.53'], search: ['example.com'] } });
  t.same(resultDns(explicit, args('K8S_POD_NAMESPACE=shop'), {}), { nameservers: ['192.0.2.53'], search: ['example.com'] }, 'the CNI spec\'s dns in the config wins');
  t.same(resultDns(conf({}), args(''), { nameservers: ['1.1.1.1'] }), { nameservers: ['1.1.1.1'] }, 'no cluster DNS: IPAM\'s');
  refused(t, () => resultDns(cluster, args('K8S_POD_NAMESPACE=Bad.NS'), {}), 4, /invalid K8S_POD_NAMESPACE in CNI_ARGS/, 'a namespace that is no DNS label');
  refused(t, () => podNamespace(parseCniArgs(`K8S_POD_NAMESPACE=${'a'.repeat(64)}`)), 4, /K8S_POD_NAMESPACE/, 'a namespace of 64 characters');
});
