// The lab pods' resolv.conf: the kubelet's content (containerd's format), and only the lab's own
// /etc/netns entries are ever named.
import t from 'tap';
import { labNetnsEtcDirs, resolvConfText, writePodResolvConf } from '../../src/lab/resolv-conf.js';

t.test('resolvConfText: search, nameserver, options, as a Kubernetes pod sees it', async (t) => {
  t.equal(
    resolvConfText({ nameservers: ['10.96.0.10'], search: ['default.svc.cluster.local', 'svc.cluster.local', 'cluster.local'], options: ['ndots:5'] }),
    'search default.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n',
  );
  t.equal(resolvConfText({ nameservers: ['10.96.0.10', '10.96.0.11'] }), 'nameserver 10.96.0.10\nnameserver 10.96.0.11\n');
  t.throws(() => resolvConfText({ search: ['x'] }), /no nameserver/);
  t.throws(() => resolvConfText({}), /no nameserver/);
});

t.test('only lab netns names', async (t) => {
  for (const bad of ['web', '../etc', 'pw-abc-/../x', 'pw-/x', 'pw-abc123-a/b', 'pw-ABC-x']) t.throws(() => writePodResolvConf(bad, 'nameserver 10.96.0.10\n'), /not a lab netns name/, bad);
  t.throws(() => labNetnsEtcDirs('web-'), /invalid lab prefix/);
  t.same(labNetnsEtcDirs('pw-zzzzzzzzzzzz-'), [], 'a prefix nobody uses: nothing');
});
