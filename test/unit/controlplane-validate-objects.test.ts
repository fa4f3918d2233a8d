import t from 'tap';
import { formatFieldErrors, type FieldError } from '../../src/api/validate.js';
import { clusterConfigSpecWithDefaults, isMac, validateClusterConfig, validateEndpoints, validateNode, validatePod } from '../../src/controlplane/validate-objects.js';
import { DEFAULT_CLUSTER_CONFIG } from '../../src/api/objects.js';

type Validator = (body: unknown) => FieldError[];
type Tap = { same: (...args: any[]) => unknown; ok: (...args: any[]) => unknown };

/** Good bodies give no errors; each bad body gives an error on exactly `field` matching `message`. */
function table(t: Tap, fn: Validator, good: unknown[], bad: Array<[string, unknown, string, RegExp]>): void {
  for (const body of good) {
    const errs = fn(body);
    t.same(errs, [], `accepts ${JSON.stringify(body)}: ${formatFieldErrors(errs)}`);
  }
  for (const [name, body, field, message] of bad) {
    const errs = fn(body);
    t.ok(errs.length > 0 && errs.every((e) => e.field === field) && errs.some((e) => message.test(e.message)), `${name}: ${formatFieldErrors(errs)}`);
  }
}

/** The distinct fields with errors. */
const fields = (errs: FieldError[]) => [...new Set(errs.map((e) => e.field))].sort();

const node = (extra: Record<string, unknown> = {}, annotations?: Record<string, string>) => ({ metadata: { name: 'node-1', ...(annotations ? { annotations } : {}) }, ...extra });
const pod = (spec: Record<string, unknown> = {}, status?: Record<string, unknown>) => ({ metadata: { name: 'web-1', namespace: 'default' }, spec, ...(status ? { status } : {}) });
const endpoints = (subsets: unknown) => ({ metadata: { name: 'web', namespace: 'default' }, subsets });
const config = (spec: Record<string, unknown>) => ({ apiVersion: 'podwire.io/v1', kind: 'ClusterConfig', metadata: { name: 'cluster' }, spec });

t.test('bodies that are not objects', async (t) => {
  for (const fn of [validateNode, validatePod, validateEndpoints, validateClusterConfig]) {
    for (const body of [undefined, null, 'x', 5, []]) {
      t.match(fn(body), [{ field: '', message: /must be a JSON object/ }], `${fn.name}(${JSON.stringify(body)})`);
    }
  }
});

t.test('isMac', async (t) => {
  for (const good of ['aa:bb:cc:dd:ee:ff', 'AA:BB:CC:DD:EE:FF', '02:42:ac:11:00:02']) t.ok(isMac(good), good);
  for (const bad of ['aa:bb:cc:dd:ee', 'aa-bb-cc-dd-ee-ff', 'aabb.ccdd.eeff', 'gg:bb:cc:dd:ee:ff', '', 5, undefined]) t.notOk(isMac(bad), String(bad));
});

t.test('nodes', async (t) => {
  table(t, validateNode, [
    node(),
    node({ spec: { podCIDR: '10.244.1.0/24', podCIDRs: ['10.244.1.0/24', 'fd00:10:244:1::/64'], unschedulable: false } }),
    node({ status: { addresses: [{ type: 'InternalIP', address: '192.168.1.10' }, { type: 'ExternalIP', address: '2001:db8::1' }, { type: 'Hostname', address: 'node-1.lab' }], conditions: [{ type: 'Ready', status: 'True' }] } }),
    node({}, { 'podwire.io/public-ip': '192.168.1.10', 'podwire.io/vtep-mac': '02:42:AC:11:00:02', 'podwire.io/backend': 'host-gw' }),
  ], [
    ['bad node name', { metadata: { name: 'Node_1' } }, 'metadata.name', /RFC 1123 subdomain/],
    ['node with a namespace', { metadata: { name: 'n', namespace: 'default' } }, 'metadata.namespace', /Forbidden/],
    ['no metadata', {}, 'metadata', /Required value/],
    ['bad podCIDR', node({ spec: { podCIDR: '10.244.1.5/24' } }), 'spec.podCIDR', /bits after the prefix length must be zero/],
    ['bad podCIDRs entry', node({ spec: { podCIDRs: ['nope'] } }), 'spec.podCIDRs[0]', /valid CIDR/],
    ['mismatched podCIDRs', node({ spec: { podCIDR: '10.244.1.0/24', podCIDRs: ['10.244.2.0/24'] } }), 'spec.podCIDRs[0]', /must match podCIDR "10.244.1.0\/24"/],
    ['two IPv4 podCIDRs', node({ spec: { podCIDRs: ['10.244.1.0/24', '10.244.2.0/24'] } }), 'spec.podCIDRs', /no more than one CIDR for each IP family/],
    ['unschedulable not boolean', node({ spec: { unschedulable: 'yes' } }), 'spec.unschedulable', /must be a boolean/],
    ['spec not object', node({ spec: [] }), 'spec', /must be an object/],
    ['unknown address type', node({ status: { addresses: [{ type: 'InternalDNS', address: 'x' }] } }), 'status.addresses[0].type', /Unsupported value: "InternalDNS"/],
    ['bad InternalIP', node({ status: { addresses: [{ type: 'InternalIP', address: 'node-1' }] } }), 'status.addresses[0].address', /valid IP address/],
    ['bad Hostname', node({ status: { addresses: [{ type: 'Hostname', address: 'Node_1' }] } }), 'status.addresses[0].address', /subdomain/],
    ['condition status', node({ status: { conditions: [{ type: 'Ready', status: 'yes' }] } }), 'status.conditions[0].status', /supported values: "True", "False", "Unknown"/],
    ['condition without type', node({ status: { conditions: [{ status: 'True' }] } }), 'status.conditions[0].type', /Required value/],
    ['bad public-ip', node({}, { 'podwire.io/public-ip': '192.168.1' }), 'metadata.annotations[podwire.io/public-ip]', /valid IP address/],
    ['malformed MAC', node({}, { 'podwire.io/vtep-mac': '02:42:ac:11:00' }), 'metadata.annotations[podwire.io/vtep-mac]', /must be a MAC address/],
    ['multicast MAC', node({}, { 'podwire.io/vtep-mac': '01:00:5e:00:00:01' }), 'metadata.annotations[podwire.io/vtep-mac]', /unicast/],
    ['broadcast MAC', node({}, { 'podwire.io/vtep-mac': 'ff:ff:ff:ff:ff:ff' }), 'metadata.annotations[podwire.io/vtep-mac]', /unicast/],
    ['unknown backend', node({}, { 'podwire.io/backend': 'wireguard' }), 'metadata.annotations[podwire.io/backend]', /Unsupported value: "wireguard": supported values: "vxlan", "host-gw", "auto"/],
  ]);
});

t.test('pods', async (t) => {
  const containers = [
    { name: 'web', image: 'nginx:1.27', ports: [{ name: 'http', containerPort: 80 }, { containerPort: 443, protocol: 'TCP' }] },
    { name: 'dns', ports: [{ name: 'dns', containerPort: 53, protocol: 'UDP' }] },
  ];
  table(t, validatePod, [
    pod(),
    pod({ nodeName: 'node-1', containers }),
    pod({}, { phase: 'Running', podIP: '10.244.1.5', podIPs: [{ ip: '10.244.1.5' }, { ip: 'fd00::5' }], hostIP: '192.168.1.10', conditions: [{ type: 'Ready', status: 'False' }] }),
    { metadata: { name: 'no-namespace' }, spec: {} },
  ], [
    ['missing spec', { metadata: { name: 'p' } }, 'spec', /Required value/],
    ['bad namespace', { metadata: { name: 'p', namespace: 'Default' }, spec: {} }, 'metadata.namespace', /RFC 1123 label/],
    ['bad nodeName', pod({ nodeName: 'Node 1' }), 'spec.nodeName', /subdomain/],
    ['containers not a list', pod({ containers: {} }), 'spec.containers', /must be a list/],
    ['container name', pod({ containers: [{ name: 'Web' }] }), 'spec.containers[0].name', /RFC 1123 label/],
    ['duplicate container name', pod({ containers: [{ name: 'a' }, { name: 'a' }] }), 'spec.containers[1].name', /Duplicate value: "a"/],
    ['image not a string', pod({ containers: [{ name: 'a', image: 5 }] }), 'spec.containers[0].image', /must be a string/],
    ['port name', pod({ containers: [{ name: 'a', ports: [{ name: 'HTTP', containerPort: 80 }] }] }), 'spec.containers[0].ports[0].name', /alpha-numeric/],
    ['containerPort 0', pod({ containers: [{ name: 'a', ports: [{ containerPort: 0 }] }] }), 'spec.containers[0].ports[0].containerPort', /between 1 and 65535/],
    ['containerPort missing', pod({ containers: [{ name: 'a', ports: [{ name: 'http' }] }] }), 'spec.containers[0].ports[0].containerPort', /Required/],
    ['protocol', pod({ containers: [{ name: 'a', ports: [{ containerPort: 80, protocol: 'tcp' }] }] }), 'spec.containers[0].ports[0].protocol', /Unsupported/],
    ['duplicate port names across containers', pod({ containers: [{ name: 'a', ports: [{ name: 'http', containerPort: 80 }] }, { name: 'b', ports: [{ name: 'http', containerPort: 8080 }] }] }), 'spec.containers[1].ports[0].name', /Duplicate value: "http"/],
    ['phase', pod({}, { phase: 'Done' }), 'status.phase', /Unsupported value: "Done"/],
    ['podIP', pod({}, { podIP: '10.244.1' }), 'status.podIP', /valid IP/],
    ['hostIP', pod({}, { hostIP: 'node-1' }), 'status.hostIP', /valid IP/],
    ['podIPs entry', pod({}, { podIPs: [{ ip: 'x' }] }), 'status.podIPs[0].ip', /valid IP/],
    ['podIPs mismatch', pod({}, { podIP: '10.244.1.5', podIPs: [{ ip: '10.244.1.6' }] }), 'status.podIPs[0].ip', /must be equal to podIP "10.244.1.5"/],
    ['two IPv4 podIPs', pod({}, { podIPs: [{ ip: '10.244.1.5' }, { ip: '10.244.1.6' }] }), 'status.podIPs', /no more than one IP for each IP family/],
    ['pod condition', pod({}, { conditions: [{ type: '', status: 'True' }] }), 'status.conditions[0].type', /Required/],
  ]);
});

t.test('endpoints', async (t) => {
  const addr = (ip: unknown, extra: Record<string, unknown> = {}) => ({ ip, ...extra });
  const subset = (addresses: unknown[], ports: unknown[] = [{ port: 80 }]) => endpoints([{ addresses, ports }]);
  table(t, validateEndpoints, [
    endpoints(undefined),
    endpoints([]),
    subset([addr('10.244.1.5', { nodeName: 'node-1', hostname: 'web-1', targetRef: { kind: 'Pod', namespace: 'default', name: 'web-1', uid: 'u-1' } }), addr('fd00::5')]),
    endpoints([{ addresses: [addr('10.244.1.5')], notReadyAddresses: [addr('10.244.2.7')], ports: [{ name: 'http', port: 80 }, { name: 'https', port: 443, protocol: 'TCP' }] }]),
    subset([addr('192.0.2.10')], [{ name: 'dns', port: 53, protocol: 'UDP' }]),
  ], [
    ['DNS-1123 but not DNS-1035 name', { metadata: { name: '1web' }, subsets: [] }, 'metadata.name', /DNS-1035/],
    ['subsets not a list', endpoints({}), 'subsets', /must be a list/],
    ['missing ip', subset([{}]), 'subsets[0].addresses[0].ip', /Required value/],
    ['bad ip', endpoints([{ addresses: [addr('10.244.1.5'), addr('10.244.1.300')] }]), 'subsets[0].addresses[1].ip', /valid IP/],
    ['IPv4 loopback', subset([addr('127.0.0.1')]), 'subsets[0].addresses[0].ip', /loopback/],
    ['loopback elsewhere in 127/8', subset([addr('127.1.2.3')]), 'subsets[0].addresses[0].ip', /loopback/],
    ['IPv6 loopback', subset([addr('::1')]), 'subsets[0].addresses[0].ip', /loopback/],
    ['mapped loopback', subset([addr('::ffff:127.0.0.1')]), 'subsets[0].addresses[0].ip', /loopback/],
    ['IPv4 link-local', subset([addr('169.254.169.254')]), 'subsets[0].addresses[0].ip', /link-local range/],
    ['IPv6 link-local', subset([addr('fe80::1')]), 'subsets[0].addresses[0].ip', /link-local range/],
    ['link-local multicast', subset([addr('224.0.0.251')]), 'subsets[0].addresses[0].ip', /link-local multicast/],
    ['unspecified v4', subset([addr('0.0.0.0')]), 'subsets[0].addresses[0].ip', /unspecified/],
    ['unspecified v6', subset([addr('::')]), 'subsets[0].addresses[0].ip', /unspecified/],
    ['not-ready loopback', endpoints([{ notReadyAddresses: [addr('127.0.0.1')] }]), 'subsets[0].notReadyAddresses[0].ip', /loopback/],
    ['nodeName', subset([addr('10.244.1.5', { nodeName: 'Node_1' })]), 'subsets[0].addresses[0].nodeName', /subdomain/],
    ['hostname', subset([addr('10.244.1.5', { hostname: 'web.1' })]), 'subsets[0].addresses[0].hostname', /RFC 1123 label/],
    ['targetRef not object', subset([addr('10.244.1.5', { targetRef: 'web-1' })]), 'subsets[0].addresses[0].targetRef', /must be an object/],
    ['targetRef.name', subset([addr('10.244.1.5', { targetRef: { kind: 'Pod', name: 5 } })]), 'subsets[0].addresses[0].targetRef.name', /must be a string/],
    ['second of two ports unnamed', subset([addr('10.244.1.5')], [{ name: 'http', port: 80 }, { port: 443 }]), 'subsets[0].ports[1].name', /Required value/],
    ['bad port name', subset([addr('10.244.1.5')], [{ name: 'HTTP', port: 80 }]), 'subsets[0].ports[0].name', /RFC 1123 label/],
    ['duplicate port name', subset([addr('10.244.1.5')], [{ name: 'http', port: 80 }, { name: 'http', port: 8080 }]), 'subsets[0].ports[1].name', /Duplicate value: "http"/],
    ['port 0', subset([addr('10.244.1.5')], [{ port: 0 }]), 'subsets[0].ports[0].port', /between 1 and 65535/],
    ['port protocol', subset([addr('10.244.1.5')], [{ port: 80, protocol: 'ICMP' }]), 'subsets[0].ports[0].protocol', /Unsupported/],
  ]);
  // Two unnamed ports: each one is missing its name, and every other problem is reported alongside.
  const errs = validateEndpoints(endpoints([{ addresses: [addr('127.0.0.1')], ports: [{ port: 80 }, { port: 443 }] }]));
  t.same(fields(errs), ['subsets[0].addresses[0].ip', 'subsets[0].ports[0].name', 'subsets[0].ports[1].name'], `every problem reported: ${formatFieldErrors(errs)}`);
  t.match(errs.filter((e) => e.field.endsWith('.name')), [{ message: /Required value/ }, { message: /Required value/ }]);
});

t.test('cluster config', async (t) => {
  table(t, validateClusterConfig, [
    config({}),
    { metadata: { name: 'cluster' } },
    config({ ...DEFAULT_CLUSTER_CONFIG }),
    config({ clusterCIDR: '10.0.0.0/8', nodeMask: 24, serviceCIDR: '172.20.0.0/16', nodePortRange: '30000-30100', backend: 'auto', vni: 16777215, vxlanPort: 4789 }),
    config({ clusterCIDR: 'fd00:10:244::/48', nodeMask: 64, serviceCIDR: 'fd00:10:96::/108' }),
    config({ clusterCIDR: '10.244.0.0/16', serviceCIDR: 'fd00:10:96::/108' }),
    config({ serviceCIDR: '10.100.0.0/16', clusterDNS: '10.100.0.53', clusterDomain: 'corp.example' }),
    config({ serviceCIDR: '10.96.0.0/29', clusterDNS: '10.96.0.6' }),
    config({ clusterDomain: 'local' }),
  ], [
    ['clusterDNS outside the service CIDR', config({ clusterDNS: '10.244.0.10' }), 'spec.clusterDNS', /not an IPv4 address in the service CIDR 10\.96\.0\.0\/12/],
    ['clusterDNS the kubernetes address', config({ clusterDNS: '10.96.0.1' }), 'spec.clusterDNS', /`kubernetes` service/],
    ['clusterDNS the network address', config({ clusterDNS: '10.96.0.0' }), 'spec.clusterDNS', /network address/],
    ['clusterDNS of the other family', config({ clusterDNS: 'fd00::a' }), 'spec.clusterDNS', /not an IPv4 address/],
    ['clusterDNS not an IP', config({ clusterDNS: 'dns' }), 'spec.clusterDNS', /valid IP address/],
    ['no 10th address for the default clusterDNS', config({ serviceCIDR: '10.96.0.0/29' }), 'spec.clusterDNS', /has no 10th address.*give spec\.clusterDNS/],
    ['clusterDomain upper case', config({ clusterDomain: 'Cluster.Local' }), 'spec.clusterDomain', /RFC 1123 subdomain/],
    ['clusterDomain trailing dot', config({ clusterDomain: 'cluster.local.' }), 'spec.clusterDomain', /RFC 1123 subdomain/],
    ['clusterDomain label too long', config({ clusterDomain: `${'a'.repeat(64)}.local` }), 'spec.clusterDomain', /at most 63 characters/],
    ['clusterDomain too long', config({ clusterDomain: Array(40).fill('abcd').join('.') }), 'spec.clusterDomain', /at most 185 characters/],
    ['apiVersion', { ...config({}), apiVersion: 'v1' }, 'apiVersion', /Unsupported value: "v1": supported values: "podwire.io\/v1"/],
    ['kind', { ...config({}), kind: 'Config' }, 'kind', /Unsupported value: "Config"/],
    ['name not cluster', { metadata: { name: 'prod' }, spec: {} }, 'metadata.name', /must be "cluster"/],
    ['no name', { metadata: {}, spec: {} }, 'metadata.name', /Required value/],
    ['namespaced', { metadata: { name: 'cluster', namespace: 'kube-system' } }, 'metadata.namespace', /Forbidden/],
    ['spec not object', { metadata: { name: 'cluster' }, spec: 'x' }, 'spec', /must be an object/],
    ['misspelt field', config({ clusterCidr: '10.0.0.0/8' }), 'spec.clusterCidr', /unknown field/],
    ['bad clusterCIDR', config({ clusterCIDR: '10.244.0.0' }), 'spec.clusterCIDR', /valid CIDR/],
    ['clusterCIDR host bits', config({ clusterCIDR: '10.244.1.0/16' }), 'spec.clusterCIDR', /bits after the prefix length must be zero/],
    ['nodeMask not an integer', config({ nodeMask: 24.5 }), 'spec.nodeMask', /must be an integer/],
    ['nodeMask shorter than the cluster prefix', config({ clusterCIDR: '10.244.0.0/16', nodeMask: 16 }), 'spec.nodeMask', /Invalid value: 16: nodeMask \/16 must be longer than the cluster CIDR 10.244.0.0\/16 prefix \/16/],
    ['nodeMask leaves no room for pods', config({ nodeMask: 31 }), 'spec.nodeMask', /at most 30 for IPv4/],
    ['too many node subnets', config({ clusterCIDR: '10.0.0.0/8', nodeMask: 28, serviceCIDR: '172.20.0.0/16' }), 'spec.nodeMask', /2\^20 node subnets/],
    ['IPv6 cluster with the default IPv4 mask', config({ clusterCIDR: 'fd00::/48' }), 'spec.nodeMask', /must be longer than the cluster CIDR fd00::\/48/],
    ['serviceCIDR too large', config({ serviceCIDR: '10.96.0.0/11' }), 'spec.serviceCIDR', /too large/],
    ['serviceCIDR too small', config({ serviceCIDR: '10.96.0.0/31' }), 'spec.serviceCIDR', /too small/],
    ['overlapping CIDRs', config({ clusterCIDR: '10.0.0.0/8', nodeMask: 16, serviceCIDR: '10.96.0.0/12' }), 'spec.serviceCIDR', /must not overlap the cluster CIDR 10.0.0.0\/8/],
    ['service CIDR around the cluster CIDR', config({ clusterCIDR: '10.100.0.0/16', serviceCIDR: '10.96.0.0/12' }), 'spec.serviceCIDR', /must not overlap/],
    ['nodePortRange reversed', config({ nodePortRange: '32767-30000' }), 'spec.nodePortRange', /expected FIRST-LAST/],
    ['nodePortRange word', config({ nodePortRange: 'high' }), 'spec.nodePortRange', /Invalid value: "high": nodePortRange "high"/],
    ['nodePortRange number', config({ nodePortRange: 30000 }), 'spec.nodePortRange', /expected FIRST-LAST/],
    ['nodePortRange past 65535', config({ nodePortRange: '30000-70000' }), 'spec.nodePortRange', /LAST <= 65535/],
    ['unknown backend', config({ backend: 'wireguard' }), 'spec.backend', /Unsupported value: "wireguard"/],
    ['vni 0', config({ vni: 0 }), 'spec.vni', /between 1 and 16777215/],
    ['vni too large', config({ vni: 16777216 }), 'spec.vni', /between 1 and 16777215/],
    ['vxlanPort', config({ vxlanPort: 65536 }), 'spec.vxlanPort', /between 1 and 65535/],
  ]);
  const errs = validateClusterConfig({ apiVersion: 'v2', metadata: { name: 'x' }, spec: { clusterCIDR: '10.0.0.0/8', nodeMask: 8, serviceCIDR: '10.96.0.0/12', nodePortRange: '1-0', backend: 'x', vni: -1, vxlanPort: 0 } });
  t.same(fields(errs), ['apiVersion', 'metadata.name', 'spec.backend', 'spec.nodeMask', 'spec.nodePortRange', 'spec.serviceCIDR', 'spec.vni', 'spec.vxlanPort'], `every problem reported: ${formatFieldErrors(errs)}`);
});

t.test('cluster config defaults', async (t) => {
  t.same(clusterConfigSpecWithDefaults(undefined), DEFAULT_CLUSTER_CONFIG);
  t.same(clusterConfigSpecWithDefaults({}), DEFAULT_CLUSTER_CONFIG);
  t.same(clusterConfigSpecWithDefaults({ backend: 'host-gw', vni: 42 }), { ...DEFAULT_CLUSTER_CONFIG, backend: 'host-gw', vni: 42 });
  t.equal(DEFAULT_CLUSTER_CONFIG.clusterDNS, '10.96.0.10');
  t.equal(DEFAULT_CLUSTER_CONFIG.clusterDomain, 'cluster.local');
  t.equal(clusterConfigSpecWithDefaults({ serviceCIDR: '10.100.0.0/16' }).clusterDNS, '10.100.0.10', 'clusterDNS follows the service CIDR: its 10th address');
  t.equal(clusterConfigSpecWithDefaults({ serviceCIDR: 'fd00:10:96::/108' }).clusterDNS, 'fd00:10:96::a');
  t.equal(clusterConfigSpecWithDefaults({ serviceCIDR: '10.100.0.0/16', clusterDNS: '10.100.0.53' }).clusterDNS, '10.100.0.53', 'a given clusterDNS is kept');
  const spec = clusterConfigSpecWithDefaults({ clusterCIDR: '10.0.0.0/8' });
  spec.nodeMask = 16;
  t.equal(DEFAULT_CLUSTER_CONFIG.nodeMask, 24, 'the defaults object is not shared with the result');
});
