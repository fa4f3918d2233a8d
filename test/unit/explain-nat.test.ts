// explain's masquerade hop (src/agent/debug/explain-nat.ts): which rule rewrites the source, in
// the order the nat chains bind, and which address a masquerade picks.
import t from 'tap';
import { masqueradeAddress, masqueradeReason } from '../../src/agent/debug/explain-nat.js';

const base = { clusterCidr: '10.244.0.0/16', podCidr: '10.244.1.0/24', dnated: false };

t.test('masqueradeReason', async (t) => {
  t.equal(masqueradeReason({ ...base, src: '10.244.1.5', dst: '10.244.2.6' }), undefined, 'pod → pod: never');
  t.match(masqueradeReason({ ...base, src: '10.244.1.5', dst: '192.0.2.12' }), /pod traffic leaving the cluster CIDR 10\.244\.0\.0\/16/, 'pod → a node address');
  t.equal(masqueradeReason({ ...base, src: '10.244.1.5', dst: '224.0.0.251' }), undefined, 'pod → multicast: no');
  t.equal(masqueradeReason({ ...base, src: '192.0.2.11', dst: '10.244.1.7' }), undefined, 'outside → this node\'s pod: source kept');
  t.match(masqueradeReason({ ...base, src: '192.0.2.11', dst: '10.244.2.6' }), /outside the pod network to another node's pod/, 'outside → another node\'s pod');
  t.equal(masqueradeReason({ ...base, src: '192.0.2.11', dst: '198.51.100.1' }), undefined, 'outside → outside: no');
  t.equal(masqueradeReason({ ...base, src: '192.0.2.11', dst: '10.244.1.7', serviceMark: 'marked by the proxy' }), 'marked by the proxy', 'the proxy\'s mark first');
  t.match(masqueradeReason({ ...base, src: '10.244.1.5', dst: '10.244.1.5', dnated: true }), /hairpin/, 'a pod reaching itself through a service');
  t.equal(masqueradeReason({ ...base, src: '10.244.1.5', dst: '10.244.1.5' }), undefined, 'no DNAT, no hairpin');
});

t.test('masqueradeAddress', async (t) => {
  t.equal(masqueradeAddress(['10.0.0.1/24', '192.0.2.11/24'], '192.0.2.12'), '192.0.2.11', 'the address on the next hop\'s subnet');
  t.equal(masqueradeAddress(['10.244.1.1/24'], '10.244.9.9'), '10.244.1.1', 'else the first');
  t.equal(masqueradeAddress([], '10.244.9.9'), undefined, 'none');
});
