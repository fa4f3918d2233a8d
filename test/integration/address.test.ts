// Addresses against the real kernel, checked through `ip -j addr`.
import t from 'tap';
import { NetlinkSocket } from '../../src/netlink/socket.js';
import { NETLINK_ROUTE } from '../../src/netlink/constants.js';
import { linkAdd, linkGet } from '../../src/netlink/link.js';
import { addrAdd, addrDel, addrList, addrReplace } from '../../src/netlink/address.js';
import { freshNetns, ipJson, SKIP_NOT_ROOT, throwsCode } from '../lib/netns.js';

const IFA_F_NODAD = 0x02;
const oracleAddrs = (ns: string, dev: string) =>
  ipJson(ns, ['addr', 'show', 'dev', dev])[0].addr_info.map((a: any) => `${a.local}/${a.prefixlen}`).sort();

t.test('address add/replace/del/list, IPv4 and IPv6', { skip: SKIP_NOT_ROOT }, async (t) => {
  const ns = freshNetns(t, 'addr');
  const s = NetlinkSocket.open(NETLINK_ROUTE, { netns: ns });
  t.teardown(() => s.close());
  linkAdd(s, { kind: 'bridge', name: 'cni0', up: true });
  const ifindex = linkGet(s, 'cni0').index;
  addrAdd(s, { ifindex, cidr: '10.244.1.1/24' });
  addrAdd(s, { ifindex, cidr: '2001:db8:1::1/64', flags: IFA_F_NODAD });
  const info = ipJson(ns, ['addr', 'show', 'dev', 'cni0'])[0].addr_info;
  const v4 = info.find((a: any) => a.local === '10.244.1.1');
  t.equal(v4.prefixlen, 24);
  t.equal(v4.broadcast, '10.244.1.255', 'broadcast derived like brd +');
  t.ok(info.find((a: any) => a.local === '2001:db8:1::1' && a.prefixlen === 64), 'IPv6 present');

  const listed = addrList(s, { ifindex }).map((a) => a.cidr).sort();
  t.same(listed, oracleAddrs(ns, 'cni0'), 'list agrees with ip -j addr');
  t.same(addrList(s, { ifindex, family: 4 }).map((a) => a.cidr), ['10.244.1.1/24'], 'family filter');
  t.equal(addrList(s).filter((a) => a.ifindex === 1).length > 0, true, 'unfiltered list includes lo');

  addrReplace(s, { ifindex, cidr: '10.244.1.1/24' });
  addrReplace(s, { ifindex, cidr: '10.244.1.1/24' });
  t.equal(oracleAddrs(ns, 'cni0').filter((c: string) => c === '10.244.1.1/24').length, 1, 'replace is idempotent');
  addrReplace(s, { ifindex, cidr: '10.244.9.1/24', broadcast: 'none' });
  t.equal(ipJson(ns, ['addr', 'show', 'dev', 'cni0'])[0].addr_info.find((a: any) => a.local === '10.244.9.1').broadcast, undefined);

  throwsCode(t, () => addrAdd(s, { ifindex, cidr: '10.244.1.1/24' }), 'EEXIST', /address add address 10\.244\.1\.1\/24/);
  addrDel(s, { ifindex, cidr: '10.244.1.1/24' });
  addrDel(s, { ifindex, cidr: '2001:db8:1::1/64' });
  t.notOk(oracleAddrs(ns, 'cni0').includes('10.244.1.1/24'), 'deleted');
  throwsCode(t, () => addrDel(s, { ifindex, cidr: '10.244.1.1/24' }), 'EADDRNOTAVAIL');
  throwsCode(t, () => addrAdd(s, { ifindex: 9999, cidr: '10.0.0.1/24' }), 'ENODEV');
  t.throws(() => addrAdd(s, { ifindex, cidr: '10.0.0.1' }), /expected ADDRESS\/PREFIX/);
  t.throws(() => addrAdd(s, { ifindex: 0, cidr: '10.0.0.1/24' }), /invalid ifindex/);
});
