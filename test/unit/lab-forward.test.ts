// The lab forwarder's command line (forward-spec.ts) and the files `lab up --keep` writes for the
// machine's shell (access.ts renderers).
import t from 'tap';
import { formatEndpoint, listenPort, parseForwarderArgs, parseListen, parseReadyLine, parseRule, parseTarget } from '../../src/lab/forward-spec.js';
import { exportLines, kubeconfigText, podwireConfigText } from '../../src/lab/access.js';

t.test('listen and target specs', async (t) => {
  t.same(parseListen('tcp:127.0.0.1:0'), { kind: 'tcp', host: '127.0.0.1', port: 0 });
  t.same(parseListen('tls:127.0.0.1:6443'), { kind: 'tcp', host: '127.0.0.1', port: 6443, tls: true });
  t.same(parseListen('unix:/run/x/n1.sock'), { kind: 'unix', path: '/run/x/n1.sock' });
  t.throws(() => parseListen('tcp:0.0.0.0:80'), /loopback only/, 'never a routable or wildcard address');
  t.throws(() => parseListen('tcp:192.0.2.2:80'), /loopback only/);
  t.throws(() => parseListen('tcp:localhost:80'), /expected IPV4:PORT/);
  t.throws(() => parseListen('tcp:127.0.0.1:70000'), /not in 0-65535/);
  t.throws(() => parseListen('unix:rel.sock'), /must be absolute/);
  t.throws(() => parseListen(`unix:/${'a'.repeat(120)}`), /longer than 107 bytes/);
  t.throws(() => parseListen('udp:127.0.0.1:1'), /expected tcp:/);
  t.same(parseTarget('tcp:10.0.0.1:10262'), { kind: 'tcp', host: '10.0.0.1', port: 10262 });
  t.same(parseTarget('unix:/a.sock'), { kind: 'unix', path: '/a.sock' });
  t.throws(() => parseTarget('tcp:10.0.0.1:0'), /port 0 is not a destination/);
  t.throws(() => parseTarget('tls:10.0.0.1:1'), /expected unix:PATH or tcp:/);
  t.same(parseRule('unix:/a.sock=tcp:10.0.0.2:10262'), { listen: { kind: 'unix', path: '/a.sock' }, target: { kind: 'tcp', host: '10.0.0.2', port: 10262 } });
  t.throws(() => parseRule('tcp:127.0.0.1:0'), /expected LISTEN=TARGET/);
  t.equal(formatEndpoint({ kind: 'tcp', host: '127.0.0.1', port: 5, tls: true }), 'tls:127.0.0.1:5');
  t.equal(listenPort('tls:127.0.0.1:43121'), 43121);
  t.throws(() => listenPort('unix:/a.sock'), /not a TCP listener/);
});

t.test('the whole command line', async (t) => {
  const cfg = parseForwarderArgs(['--forward', 'tls:127.0.0.1:0=unix:/cp.sock', '--tls-cert', '/c', '--tls-key', '/k', '--watch', '/run/podwire/lab/pw-x.json', '--max-connections', '8']);
  t.same(cfg, { rules: [{ listen: { kind: 'tcp', host: '127.0.0.1', port: 0, tls: true }, target: { kind: 'unix', path: '/cp.sock' } }], tls: { cert: '/c', key: '/k' }, maxConnections: 8, watch: '/run/podwire/lab/pw-x.json' });
  t.equal(parseForwarderArgs(['--forward', 'unix:/a=tcp:10.0.0.1:1', '--forward', 'unix:/b=tcp:10.0.0.2:1']).rules.length, 2, 'several rules');
  t.equal(parseForwarderArgs(['--forward', 'unix:/a=tcp:10.0.0.1:1']).maxConnections, 64, 'bounded by default');
  t.throws(() => parseForwarderArgs([]), /no --forward given/);
  t.throws(() => parseForwarderArgs(['--forward']), /--forward needs a value/);
  t.throws(() => parseForwarderArgs(['--listen', 'x']), /unknown argument "--listen"/);
  t.throws(() => parseForwarderArgs(['--forward', 'tls:127.0.0.1:0=unix:/a']), /needs --tls-cert/);
  t.throws(() => parseForwarderArgs(['--forward', 'tcp:127.0.0.1:0=unix:/a', '--tls-cert', '/c', '--tls-key', '/k']), /no tls: listener/);
  t.throws(() => parseForwarderArgs(['--forward', 'tls:127.0.0.1:0=unix:/a', '--tls-cert', '/c']), /go together/);
  t.throws(() => parseForwarderArgs(['--forward', 'unix:/a=tcp:10.0.0.1:1', '--max-connections', '0']), /1-1024/);
  t.throws(() => parseForwarderArgs(['--forward', 'unix:/a=tcp:10.0.0.1:1', '--max-connections', '5000']), /1-1024/);
});

t.test('ready line', async (t) => {
  t.same(parseReadyLine('{"ready":true,"pid":12,"listening":["tls:127.0.0.1:4000"]}'), { ready: true, pid: 12, listening: ['tls:127.0.0.1:4000'] });
  t.throws(() => parseReadyLine('forwarder: oops'), /expected its JSON ready line/);
  t.throws(() => parseReadyLine('{"ready":true,"listening":[]}'), /malformed ready line/);
});

t.test('kubeconfig, podwire.json and the export lines', async (t) => {
  const kc = kubeconfigText('pw-demo', 'https://127.0.0.1:40001', '/run/podwire/lab/pw-demo.d/access/tls.crt', 'tok"en');
  t.match(kc, /^apiVersion: v1\nkind: Config\n/);
  t.match(kc, /server: "https:\/\/127\.0\.0\.1:40001"/);
  t.match(kc, /certificate-authority: "\/run\/podwire\/lab\/pw-demo\.d\/access\/tls\.crt"/);
  t.match(kc, /token: "tok\\"en"/, 'values are quoted (JSON strings are YAML)');
  t.match(kc, /current-context: "pw-demo"\n$/);
  t.same(JSON.parse(podwireConfigText('https://127.0.0.1:40001', '/t', '/c')), { server: 'https://127.0.0.1:40001', tokenFile: '/t', caFile: '/c' });
  t.same(exportLines({ kubeconfig: '/k', podwireConfig: '/p' }), ['export KUBECONFIG=/k', 'export PODWIRE_CONFIG=/p']);
});
