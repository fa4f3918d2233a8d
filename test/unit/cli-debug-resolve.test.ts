// SRC / DST of the debugging commands (src/cli/debug/resolve.ts): destination syntax, and names or
// addresses resolved to a pod, node, service or plain IP, with close matches for unknown names.
import t from 'tap';
import type { Node, Pod, Service } from '../../src/api/objects.js';
import { UsageError } from '../../src/flags/flags.js';
import { parseDestination, resolveName, type Cluster } from '../../src/cli/debug/resolve.js';

const pod = (name: string, ip: string | undefined, node: string, namespace = 'default'): Pod => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace }, spec: { nodeName: node }, status: { phase: 'Running', ...(ip ? { podIP: ip, podIPs: [{ ip }] } : {}) } });
const node = (name: string, ip: string): Node => ({ apiVersion: 'v1', kind: 'Node', metadata: { name }, spec: { podCIDR: '10.244.0.0/24' }, status: { addresses: [{ type: 'InternalIP', address: ip }] } });
const svc = (name: string, clusterIP: string, namespace = 'default', extra: Partial<Service['spec']> = {}): Service => ({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace }, spec: { clusterIP, ports: [{ port: 80 }], ...extra } });

const cluster: Cluster = {
  pods: [pod('echo-node1-1', '10.244.1.2', 'node1'), pod('echo-node2-1', '10.244.2.2', 'node2'), pod('dns', '10.244.1.9', 'node1', 'kube-system'), pod('pending', undefined, 'node2'), pod('web', '10.244.2.7', 'node2')],
  nodes: [node('node1', '192.0.2.11'), node('node2', '192.0.2.12')],
  services: [svc('web', '10.96.0.20', 'default', { externalIPs: ['203.0.113.5'] }), svc('kube-dns', '10.96.0.10', 'kube-system'), svc('headless', 'None')],
};

t.test('destinations: NAME, NAME:PORT, PORT/PROTO, IPv6 in brackets; bad ones are usage errors naming the syntax', async (t) => {
  t.same(parseDestination('web'), { what: 'web', protocol: 'TCP' });
  t.same(parseDestination('web:80'), { what: 'web', port: 80, protocol: 'TCP' });
  t.same(parseDestination('10.96.0.10:53/udp'), { what: '10.96.0.10', port: 53, protocol: 'UDP' });
  t.same(parseDestination('default/web:8080/TCP'), { what: 'default/web', port: 8080, protocol: 'TCP' });
  t.same(parseDestination('[fd00::1]:443'), { what: 'fd00::1', port: 443, protocol: 'TCP' });
  t.same(parseDestination('fd00::1'), { what: 'fd00::1', protocol: 'TCP' }, 'a bare IPv6 address has no port');
  for (const bad of ['', 'web:', 'web:0', 'web:65536', 'web:http', ':80', 'web/udp', '[web]:80', 'web:80/icmp']) {
    t.throws(() => parseDestination(bad), UsageError, JSON.stringify(bad));
  }
  t.match((() => { try { parseDestination('web:99999'); } catch (e) { return (e as Error).message; } return ''; })(), /port "99999" is not 1-65535.*:PORT\/PROTO/);
});

t.test('names: a pod first (default namespace unless NS/NAME), then a node, then a service; pod:/svc: pick one', async (t) => {
  t.match(resolveName('echo-node1-1', cluster), { kind: 'pod', name: 'echo-node1-1', namespace: 'default', ip: '10.244.1.2', node: 'node1' });
  t.match(resolveName('kube-system/dns', cluster), { kind: 'pod', namespace: 'kube-system', ip: '10.244.1.9' });
  t.match(resolveName('node2', cluster), { kind: 'node', name: 'node2', ip: '192.0.2.12' });
  t.match(resolveName('web', cluster), { kind: 'pod', name: 'web' }, 'a pod and a service named web: the pod');
  t.match(resolveName('svc:web', cluster), { kind: 'service', name: 'web', ip: '10.96.0.20' });
  t.match(resolveName('web', cluster, ['service']), { kind: 'service', name: 'web' });
  t.match(resolveName('kube-system/kube-dns', cluster), { kind: 'service', ip: '10.96.0.10' });
});

t.test('addresses: a pod IP, a node IP, a ClusterIP or external IP, else a plain IP', async (t) => {
  t.match(resolveName('10.244.2.2', cluster), { kind: 'pod', name: 'echo-node2-1' });
  t.match(resolveName('192.0.2.11', cluster), { kind: 'node', name: 'node1', ip: '192.0.2.11' });
  t.match(resolveName('10.96.0.10', cluster), { kind: 'service', name: 'kube-dns', namespace: 'kube-system' });
  t.match(resolveName('203.0.113.5', cluster), { kind: 'service', name: 'web', ip: '203.0.113.5' });
  t.same(resolveName('198.51.100.1', cluster), { kind: 'ip', ip: '198.51.100.1' });
  t.throws(() => resolveName('198.51.100.1', cluster, ['pod']), /not the address of any pod/);
});

t.test('unknown names: usage errors with the close matches; pods without an IP and headless services say why', async (t) => {
  t.throws(() => resolveName('echo-node1-2', cluster), { name: 'UsageError', message: /no pod, node, service named "echo-node1-2"; did you mean echo-node1-1/ });
  t.throws(() => resolveName('nod1', cluster), { message: /did you mean node1/ });
  t.throws(() => resolveName('echo-node1-1', cluster, ['service']), { message: /no service named/ });
  t.throws(() => resolveName('pending', cluster), { message: /pod default\/pending has no IP yet/ });
  t.throws(() => resolveName('svc:headless', cluster), { message: /headless or ExternalName/ });
  const far = (() => { try { resolveName('zzzzzz', cluster, ['pod']); } catch (e) { return e as Error; } return undefined; })();
  t.ok(far instanceof UsageError);
  t.notMatch(far?.message ?? '', /did you mean/, 'nothing close: no suggestions');
});
