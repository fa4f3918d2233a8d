import t from 'tap';
import {
  formatFieldErrors,
  validateCidr,
  validateDns1035Label,
  validateDns1123Label,
  validateDns1123Subdomain,
  validateIp,
  validateLabels,
  validatePort,
  validatePortName,
  validateProtocol,
  validateQualifiedName,
  validateService,
  validateServiceSpec,
  validateSessionAffinity,
  validateTargetPort,
  validateTrafficPolicy,
  validateServiceType,
  type FieldError,
} from '../../src/api/validate.js';

type Validator = (v: unknown, field: string) => FieldError[];

function table(t: Tap, name: string, fn: Validator, good: unknown[], bad: Array<[unknown, RegExp]>): void {
  for (const v of good) t.same(fn(v, 'f'), [], `${name} accepts ${JSON.stringify(v)}`);
  for (const [v, message] of bad) {
    const errs = fn(v, 'f');
    t.ok(errs.length > 0 && errs.every((e) => e.field === 'f') && errs.some((e) => message.test(e.message)), `${name} rejects ${JSON.stringify(v)}: ${formatFieldErrors(errs)}`);
  }
}
type Tap = { same: (...args: any[]) => unknown; ok: (...args: any[]) => unknown };

t.test('names', async (t) => {
  table(t, 'dns1123 label', validateDns1123Label, ['a', 'my-ns', '123-abc', 'a'.repeat(63)], [
    [undefined, /Required value/], ['', /Required/], ['My', /RFC 1123 label/], ['-a', /RFC 1123/], ['a-', /RFC 1123/], ['a.b', /RFC 1123/],
    ['a'.repeat(64), /Too long: may not be more than 63/], [5, /must be a string/],
  ]);
  table(t, 'dns1035 label', validateDns1035Label, ['web', 'a-1'], [['1web', /DNS-1035/], ['web_1', /DNS-1035/], ['a'.repeat(64), /Too long/]]);
  table(t, 'dns1123 subdomain', validateDns1123Subdomain, ['node-1', 'node-1.example.com', '1.2.3', 'a'.repeat(253)], [
    ['Node1', /subdomain/], ['a..b', /subdomain/], ['.a', /subdomain/], ['a.', /subdomain/], ['a_b', /subdomain/], ['a'.repeat(254), /Too long: may not be more than 253/],
  ]);
});

t.test('label keys, values and maps', async (t) => {
  table(t, 'qualified name', validateQualifiedName, ['app', 'App.Name_1', 'example.com/app', 'k8s.io/x', 'a'.repeat(63)], [
    ['', /non-empty/], ['/app', /prefix part must be non-empty/], ['example.com/', /name part must be non-empty/], ['a/b/c', /NAME or PREFIX\/NAME/],
    ['-app', /alphanumeric/], ['app-', /alphanumeric/], ['a'.repeat(64), /no more than 63/], ['Example.com/app', /prefix part/],
  ]);
  t.same(validateLabels({ app: 'web', 'example.com/tier': '', v: 'A.b-c_1' }, 'metadata.labels'), []);
  t.same(validateLabels(undefined, 'x'), []);
  const errs = validateLabels({ 'bad key!': 'x', ok: 'bad value!', long: 'v'.repeat(64), num: 5 }, 'metadata.labels');
  t.same(errs.map((e) => e.field), ['metadata.labels', 'metadata.labels[ok]', 'metadata.labels[long]', 'metadata.labels[num]'], formatFieldErrors(errs));
  t.match(validateLabels(['a'], 'x')[0].message, /must be an object/);
});

t.test('ports, protocols, target ports, port names', async (t) => {
  table(t, 'port', validatePort, [1, 80, 65535], [[0, /between 1 and 65535, inclusive/], [65536, /between/], [80.5, /between/], ['80', /between/], [undefined, /Required/]]);
  table(t, 'protocol', validateProtocol, ['TCP', 'UDP', 'SCTP', undefined], [['tcp', /Unsupported value: "tcp": supported values: "TCP", "UDP", "SCTP"/], ['ICMP', /Unsupported/]]);
  table(t, 'port name', validatePortName, ['http', 'http-alt', 'h2c', 'a1', 'x'.repeat(15)], [
    ['x'.repeat(16), /no more than 15/], ['Http', /alpha-numeric/], ['a--b', /consecutive hyphens/], ['123', /at least one letter/], ['-http', /begin or end/], ['http-', /begin or end/], ['', /Required/], ['a_b', /alpha-numeric/],
  ]);
  table(t, 'targetPort', validateTargetPort, [undefined, 8080, 'http', '8080'], [[0, /between/], [70000, /between/], ['HTTP', /alpha-numeric/], ['0', /between/], [true, /between/]]);
});

t.test('IPs and CIDRs', async (t) => {
  table(t, 'ip', validateIp, ['10.96.0.1', '::1', 'fd00::10', '::ffff:1.2.3.4'], [
    ['10.96.0.256', /valid IP address/], ['010.0.0.1', /valid IP/], ['fe80::1%eth0', /valid IP/], ['10.0.0.0/8', /valid IP/], ['', /Required/], [7, /valid IP/],
  ]);
  t.match(validateIp('fd00::1', 'f', 4)[0].message, /must be an IPv4 address/);
  t.same(validateIp('10.0.0.1', 'f', 4), []);
  table(t, 'cidr', validateCidr, ['10.244.0.0/16', '10.244.1.0/24', 'fd00::/64', '0.0.0.0/0', '10.0.0.1/32'], [
    ['10.244.1.5/24', /bits after the prefix length must be zero/], ['10.0.0.0', /valid CIDR/], ['10.0.0.0/33', /valid CIDR/], ['fd00::/129', /valid CIDR/], ['x/1', /valid CIDR/], [undefined, /Required/],
  ]);
});

t.test('service type, traffic policies, session affinity', async (t) => {
  table(t, 'type', validateServiceType, ['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName', undefined], [['clusterip', /Unsupported/], ['Headless', /supported values: "ClusterIP", "NodePort", "LoadBalancer", "ExternalName"/]]);
  table(t, 'traffic policy', validateTrafficPolicy, ['Cluster', 'Local', undefined], [['Global', /supported values: "Cluster", "Local"/]]);
  const sa = (spec: Record<string, unknown>) => validateSessionAffinity(spec, 'spec');
  t.same(sa({}), []);
  t.same(sa({ sessionAffinity: 'None' }), []);
  t.same(sa({ sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 86400 } } }), []);
  t.same(sa({ sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 1 } } }), []);
  for (const bad of [0, 86401, 1.5, '10']) {
    t.same(sa({ sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: bad } } }).map((e) => e.field), ['spec.sessionAffinityConfig.clientIP.timeoutSeconds'], String(bad));
  }
  t.match(sa({ sessionAffinity: 'Sticky' })[0], { field: 'spec.sessionAffinity', message: /Unsupported/ });
  t.match(sa({ sessionAffinityConfig: { clientIP: { timeoutSeconds: 5 } } })[0], { field: 'spec.sessionAffinityConfig', message: /only be set when `sessionAffinity` is ClientIP/ });
});

/** The distinct fields with errors (a field may carry several messages). */
const fields = (errs: FieldError[]) => [...new Set(errs.map((e) => e.field))].sort();

t.test('whole services: good ones pass', async (t) => {
  const good: unknown[] = [
    { metadata: { name: 'web', namespace: 'default', labels: { app: 'web' } }, spec: { selector: { app: 'web' }, ports: [{ port: 80, targetPort: 'http' }] } },
    { metadata: { name: 'dns' }, spec: { type: 'NodePort', ports: [{ name: 'dns', port: 53, protocol: 'UDP', nodePort: 30053 }, { name: 'dns-tcp', port: 53, protocol: 'TCP', nodePort: 30053 }], externalTrafficPolicy: 'Local' } },
    { metadata: { name: 'db' }, spec: { clusterIP: 'None', selector: { app: 'db' } } },
    { metadata: { name: 'db-all' }, spec: { clusterIP: 'None', selector: { app: 'db' }, publishNotReadyAddresses: true } },
    { metadata: { name: 'ext' }, spec: { type: 'ExternalName', externalName: 'db.example.com.' } },
    { metadata: { name: 'lb' }, spec: { type: 'LoadBalancer', loadBalancerIP: '192.0.2.10', ports: [{ port: 443, nodePort: 0 }], internalTrafficPolicy: 'Local', sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 10800 } } } },
    { metadata: { name: 'pinned' }, spec: { clusterIP: '10.96.0.10', externalIPs: ['198.51.100.1'], externalTrafficPolicy: 'Cluster', ports: [{ port: 80 }] } },
  ];
  for (const body of good) t.same(validateService(body), [], JSON.stringify(body));
});

t.test('whole services: one bad body reports every problem, each naming its field', async (t) => {
  const errs = validateService({
    metadata: { name: '1-Web', namespace: 'Default', labels: { 'a/b/c': 'x' } },
    spec: {
      type: 'NodePort',
      clusterIP: '10.96.0.300',
      selector: { app: 'bad value!' },
      ports: [
        { name: 'http', port: 0, protocol: 'tcp', targetPort: 'HTTP', nodePort: 70000 },
        { name: 'http', port: 443 },
        { port: 443 },
      ],
      sessionAffinity: 'ClientIP',
      sessionAffinityConfig: { clientIP: { timeoutSeconds: 0 } },
      externalTrafficPolicy: 'Global',
      internalTrafficPolicy: 'Nowhere',
      loadBalancerIP: '1.2.3.4',
      externalIPs: ['nope'],
      publishNotReadyAddresses: 'yes',
    },
  });
  t.same(fields(errs), [
    'metadata.labels',
    'metadata.name',
    'metadata.namespace',
    'spec.clusterIP',
    'spec.externalIPs[0]',
    'spec.externalTrafficPolicy',
    'spec.internalTrafficPolicy',
    'spec.loadBalancerIP',
    'spec.ports[0].nodePort',
    'spec.ports[0].port',
    'spec.ports[0].protocol',
    'spec.ports[0].targetPort',
    'spec.ports[1].name',
    'spec.ports[2]',
    'spec.ports[2].name',
    'spec.publishNotReadyAddresses',
    'spec.selector[app]',
    'spec.sessionAffinityConfig.clientIP.timeoutSeconds',
  ], formatFieldErrors(errs));
});

t.test('whole services: type-dependent rules', async (t) => {
  const spec = (s: Record<string, unknown>) => fields(validateServiceSpec(s));
  t.same(spec({}), ['spec.ports'], 'ports are required for a ClusterIP service');
  t.same(spec({ type: 'ExternalName' }), ['spec.externalName']);
  t.same(spec({ type: 'ExternalName', externalName: 'Bad_Name', clusterIP: '10.96.0.5' }), ['spec.clusterIP', 'spec.externalName']);
  t.same(spec({ ports: [{ port: 80, nodePort: 30080 }] }), ['spec.ports[0].nodePort'], 'nodePort on a ClusterIP service');
  t.same(spec({ type: 'NodePort', clusterIP: 'None', ports: [{ port: 80 }] }), ['spec.clusterIP']);
  t.same(spec({ ports: [{ port: 80 }], externalTrafficPolicy: 'Local' }), ['spec.externalTrafficPolicy'], 'only for externally reachable services');
  t.same(spec({ ports: [{ port: 80 }], loadBalancerIP: '192.0.2.1' }), ['spec.loadBalancerIP']);
  t.same(spec({ ports: [{ port: 53, protocol: 'UDP' }, { port: 53, protocol: 'UDP' }] }), ['spec.ports[0].name', 'spec.ports[1]', 'spec.ports[1].name'], 'names required with >1 port; (port, protocol) unique');
  t.same(spec({ ports: 'x' }), ['spec.ports']);
  t.same(fields(validateService(null)), ['']);
  t.same(fields(validateService({ spec: { ports: [{ port: 1 }] } })), ['metadata']);
  t.same(fields(validateService({ metadata: { name: 'a', annotations: { 'x/y/z': 'v', ok: 3 } }, spec: { ports: [{ port: 1 }] } })), ['metadata.annotations', 'metadata.annotations[ok]']);
});
