// IPVS codec: requests byte-exact against what ipvsadm 1.31 (libnl) sends, decoding of the kernel's
// replies captured after real traffic (test/fixtures/netlink/ipvs-*.hex, made by ipvs-capture.sh
// in the kernel VM; ipvs-dump-oracle.txt is ipvsadm's own view of the same table), input
// validation, and malformed replies.
import t from 'tap';
import { Attrs, CodecError, decodeMsgs, encodeAttrs, encodePayload, nla, type Attr } from '../../src/netlink/codec.js';
import { NLMSG_DONE } from '../../src/netlink/constants.js';
import { encodeGenlHeader, GENL_HDRLEN } from '../../src/netlink/genl.js';
import {
  describeIpvsDestination, describeIpvsService, encodeDelDestination, encodeDelService, encodeFlush, encodeGetConfig,
  encodeGetDestinations, encodeGetInfo, encodeGetService, encodeGetServices, encodeNewDestination, encodeNewService,
  encodeSetConfig, encodeSetDestination, encodeSetService, ipvsServiceKeyOf, type IpvsDestinationSpec,
  type IpvsServiceKey, type IpvsServiceSpec,
} from '../../src/netlink/ipvs.js';
import { decodeConfig, decodeDestination, decodeInfo, decodeService } from '../../src/netlink/ipvs-decode.js';
import {
  IPVS_CMD_ATTR_DEST, IPVS_CMD_ATTR_SERVICE, IPVS_CMD_NEW_DEST, IPVS_CMD_NEW_SERVICE, IPVS_DEST_ATTR_ADDR,
  IPVS_DEST_ATTR_ADDR_FAMILY, IPVS_DEST_ATTR_PORT, IPVS_SVC_ATTR_ADDR, IPVS_SVC_ATTR_AF, IPVS_SVC_ATTR_FWMARK,
  IPVS_SVC_ATTR_PORT, IPVS_SVC_ATTR_PROTOCOL, IPVS_SVC_ATTR_STATS,
} from '../../src/netlink/ipvs-constants.js';
import { golden } from '../lib/fixtures.js';

const hex = (b: Buffer) => b.toString('hex');
const TCP80: IpvsServiceKey = { protocol: 'tcp', address: '10.96.0.5', port: 80 };
const MASQ_DEST: IpvsDestinationSpec = { address: '10.244.1.5', port: 8080, forward: 'masq', weight: 3, upperThreshold: 100, lowerThreshold: 10 };

t.test('service requests are byte-identical to ipvsadm (libnl)', async (t) => {
  const cases: Array<[string, IpvsServiceSpec]> = [
    ['ipvs-new-service-tcp', { ...TCP80, scheduler: 'rr' }],
    ['ipvs-new-service-udp', { protocol: 'udp', address: '10.96.0.10', port: 53, scheduler: 'wrr' }],
    ['ipvs-new-service-fwmark', { family: 4, fwmark: 7, scheduler: 'lc' }],
    ['ipvs-new-service-persistent', {
      protocol: 'tcp', address: '10.96.0.6', port: 443, scheduler: 'sh', flags: { persistent: true, shFallback: true, shPort: true },
      timeout: 300, netmask: 24,
    }],
    ['ipvs-new-service-onepacket', { protocol: 'udp', address: '10.96.0.11', port: 53, scheduler: 'rr', flags: { onePacket: true } }],
    ['ipvs-new-service6', { protocol: 'tcp', address: 'fd00::5', port: 80, scheduler: 'mh', flags: { mhPort: true } }],
    ['ipvs-new-service6-persistent', { protocol: 'udp', address: 'fd00::6', port: 53, scheduler: 'lc', flags: { persistent: true }, timeout: 60, netmask: 64 }],
  ];
  for (const [name, spec] of cases) t.equal(hex(encodeNewService(spec)), hex(golden(name)), `${name}: ${JSON.stringify(spec)}`);
  t.equal(hex(encodeNewService({ protocol: 'tcp', address: '10.96.0.6', port: 443, scheduler: 'sh', flags: { persistent: true, shFallback: true, shPort: true }, timeout: 300, netmask: '255.255.255.0' })),
    hex(golden('ipvs-new-service-persistent')), 'a dotted IPv4 netmask is the same mask');
  t.equal(hex(encodeSetService({ ...TCP80, scheduler: 'wrr' })), hex(golden('ipvs-set-service')), 'ipvsadm -E: the full service, flags mask ~0');
  t.equal(hex(encodeGetServices()), hex(golden('ipvs-get-services')), 'dump: genlmsghdr only');
  t.equal(hex(encodeGetDestinations(TCP80)), hex(golden('ipvs-get-dests')), 'GET_DEST: ipvsadm sends only the identifying attributes');
  t.equal(hex(encodeGetDestinations({ family: 4, fwmark: 7 })), hex(golden('ipvs-get-dests-fwmark')));
});

t.test('destination, config, info and flush requests are byte-identical to ipvsadm', async (t) => {
  t.equal(hex(encodeNewDestination(TCP80, MASQ_DEST)), hex(identifyingService(golden('ipvs-new-dest'))), 'ipvsadm -a ... -m -w 3 -x 100 -y 10');
  t.equal(hex(encodeNewDestination({ protocol: 'tcp', address: 'fd00::5', port: 80 }, { address: 'fd00::1:5', port: 8080, forward: 'masq' })),
    hex(identifyingService(golden('ipvs-new-dest6'))), 'IPv6, default weight 1');
  t.equal(hex(encodeNewDestination({ family: 4, fwmark: 7 }, { address: '10.0.1.3', port: 0, forward: 'tunnel', tunnelType: 'gue', tunnelPort: 6080, tunnelChecksum: 'csum' })),
    hex(identifyingService(golden('ipvs-new-dest-tunnel'))), 'tunnel: gue, port, csum');
  t.equal(hex(encodeSetDestination(TCP80, { address: '10.244.1.5', port: 8080, forward: 'masq', weight: 0 })),
    hex(identifyingService(golden('ipvs-set-dest'))), 'weight 0 (quiesce)');
  t.equal(hex(encodeSetConfig({ tcp: 900, tcpFin: 120, udp: 300 })), hex(golden('ipvs-set-config')));
  t.equal(hex(encodeGetConfig()), hex(golden('ipvs-get-config')));
  t.equal(hex(encodeGetInfo()), hex(golden('ipvs-get-info')));
  t.equal(hex(encodeFlush()), hex(golden('ipvs-flush')));
});

t.test('commands that only name a service or real server send just its identifying attributes', async (t) => {
  // ipvsadm fills in every attribute (its defaults: an empty scheduler, weight 1, route...); the
  // kernel reads only AF + protocol/address/port or fwmark, and the real server's address family,
  // address and port (ip_vs_genl_parse_service/_dest with full_entry false). Compared with those kept.
  t.equal(hex(encodeDelService({ protocol: 'tcp', address: '10.96.0.6', port: 443 })), hex(identifyingService(golden('ipvs-del-service'))));
  t.equal(hex(encodeGetService(TCP80)), hex(identifyingService(golden('ipvs-get-service'))));
  t.equal(hex(encodeDelDestination(TCP80, { address: '10.244.1.5', port: 8080 })), hex(identifyingService(golden('ipvs-del-dest'), true)));
  t.ok(golden('ipvs-del-dest').length > encodeDelDestination(TCP80, { address: '10.244.1.5', port: 8080 }).length, 'ipvsadm sent more');
});

// A request payload with the nested service (and, when `destToo`, the real server) cut down to
// the attributes the kernel reads for commands that only name them; order kept.
function identifyingService(payload: Buffer, destToo = false): Buffer {
  const keep: Record<number, number[]> = {
    [IPVS_CMD_ATTR_SERVICE]: [IPVS_SVC_ATTR_AF, IPVS_SVC_ATTR_PROTOCOL, IPVS_SVC_ATTR_ADDR, IPVS_SVC_ATTR_PORT, IPVS_SVC_ATTR_FWMARK],
    [IPVS_CMD_ATTR_DEST]: [IPVS_DEST_ATTR_ADDR_FAMILY, IPVS_DEST_ATTR_ADDR, IPVS_DEST_ATTR_PORT],
  };
  const top = new Attrs(payload.subarray(GENL_HDRLEN)).all.map((a): Attr => {
    const filter = a.type === IPVS_CMD_ATTR_SERVICE || (destToo && a.type === IPVS_CMD_ATTR_DEST) ? keep[a.type]! : undefined;
    if (!filter) return a.type === IPVS_CMD_ATTR_DEST ? { type: a.type, value: new Attrs(a.data).all.map((n) => ({ type: n.type, value: n.data })) } : { type: a.type, value: a.data };
    return { type: a.type, value: new Attrs(a.data).all.filter((n) => filter.includes(n.type)).map((n) => ({ type: n.type, value: n.data })) };
  });
  return encodePayload(payload.subarray(0, GENL_HDRLEN), top);
}

/** The IPVS messages of captured reply datagrams (NLMSG_DONE and errors left out). */
function ipvsMsgs(name: string): Buffer[] {
  return decodeMsgs(golden(name)).filter((m) => m.type !== NLMSG_DONE && m.type > 0x10).map((m) => m.payload);
}

const statsOf = (conns: number, inPackets: number, outPackets: number, inBytes: number, outBytes: number) => ({ conns, inPackets, outPackets, inBytes, outBytes });

t.test('decodeService: the kernel dump after traffic, as ipvsadm -Ln --stats shows it', async (t) => {
  const services = ipvsMsgs('ipvs-dump-services').map(decodeService);
  t.equal(services.length, 4, 'TCP 10.96.0.5:80, TCP 10.96.0.7:81, UDP [fd00::5]:53, FWM 9');
  const by = (d: string) => services.find((s) => describeIpvsService(ipvsServiceKeyOf(s)) === d);
  const tcp = by('TCP 10.96.0.5:80')!;
  t.match(tcp, { family: 4, protocol: 'tcp', address: '10.96.0.5', port: 80, scheduler: 'rr', timeout: 0, netmask: 32 });
  t.same(tcp.flags, { persistent: false, hashed: true, onePacket: false, shFallback: false, shPort: false, mhFallback: false, mhPort: false, raw: 2 });
  t.match(tcp.stats, statsOf(3, 15, 12, 804, 666), '32-bit counters: 3 conns, 15/12 packets, 804/666 bytes (the oracle)');
  t.match(tcp.stats64, statsOf(3, 15, 12, 804, 666), '64-bit counters agree');
  t.ok(tcp.stats64!.inBps > 0 && tcp.stats64!.inPps >= 0, 'rates decoded (estimator ran)');
  t.match(by('TCP 10.96.0.7:81'), { flags: { persistent: true }, timeout: 10, netmask: '255.0.255.0' }, 'a non-contiguous mask stays exact');
  t.match(by('UDP [fd00::5]:53'), { family: 6, protocol: 'udp', address: 'fd00::5', scheduler: 'lc', flags: { persistent: true }, timeout: 60, netmask: 128 });
  const fwm = by('FWM 9')!;
  t.match(fwm, { family: 4, fwmark: 9, scheduler: 'mh', flags: { mhFallback: true, mhPort: true, shFallback: false, hashed: true } });
  t.equal(fwm.protocol, undefined, 'a fwmark service has no protocol, address or port');
  t.equal(fwm.address, undefined);
});

t.test('decodeService: the GET_SERVICE reply of one service', async (t) => {
  const [msg] = ipvsMsgs('ipvs-get-service-reply');
  t.match(decodeService(msg!), { address: '10.96.0.5', port: 80, stats64: statsOf(3, 15, 12, 804, 666) });
});

t.test('decodeDestination: masq with thresholds and counters, IPv6, tunnel', async (t) => {
  const [masq] = ipvsMsgs('ipvs-dump-dests').map((p) => decodeDestination(p));
  t.match(masq, {
    address: '10.0.1.2', port: 8080, addressFamily: 4, forward: 'masq', weight: 2, upperThreshold: 1000, lowerThreshold: 10,
    activeConns: 0, inactiveConns: 3, persistConns: 0, stats: statsOf(3, 15, 12, 804, 666), stats64: statsOf(3, 15, 12, 804, 666),
  });
  t.notOk('tunnelType' in masq!, 'tunnel fields only on tunnel real servers');
  const [v6] = ipvsMsgs('ipvs-dump-dests6').map((p) => decodeDestination(p));
  t.match(v6, { address: 'fd00::1:2', port: 53, addressFamily: 6, forward: 'masq', weight: 1 });
  const [tun] = ipvsMsgs('ipvs-dump-dests-tunnel').map((p) => decodeDestination(p));
  t.match(tun, { address: '10.0.1.2', port: 0, forward: 'tunnel', tunnelType: 'gue', tunnelPort: 6080, tunnelChecksum: 'csum' });
});

t.test('decodeConfig and decodeInfo', async (t) => {
  t.same(decodeConfig(ipvsMsgs('ipvs-get-config-reply')[0]!), { tcp: 900, tcpFin: 120, udp: 300 });
  t.same(decodeInfo(ipvsMsgs('ipvs-get-info-reply')[0]!), { version: '1.2.1', connTableSize: 4096 });
});

t.test('encode then decode: a service request reads back as the spec', async (t) => {
  const specs: IpvsServiceSpec[] = [
    { ...TCP80, scheduler: 'rr' },
    { protocol: 'sctp', address: '10.96.0.9', port: 9, scheduler: 'wrr', flags: { onePacket: true } },
    { family: 6, fwmark: 0xffffffff, scheduler: 'sh', flags: { persistent: true, shFallback: true }, timeout: 86400, netmask: 64 },
    { protocol: 'udp', address: '2001:db8::1', port: 65535, scheduler: 'mh', flags: { mhFallback: true, mhPort: true } },
    { protocol: 'tcp', address: '10.0.0.1', port: 0, scheduler: 'lc', flags: { persistent: true }, timeout: 1, netmask: 0, persistenceEngine: 'sip' },
  ];
  for (const spec of specs) {
    const got = decodeService(encodeNewService(spec)); // a NEW_SERVICE request is shaped like the reply, without stats
    t.match(got, { ...spec, flags: { ...spec.flags, hashed: false } }, JSON.stringify(spec));
  }
});

t.test('bad input is refused before anything is sent, naming the object and the field', async (t) => {
  const bad: Array<[() => unknown, RegExp]> = [
    [() => encodeNewService({ ...TCP80, scheduler: 'x'.repeat(16) }), /scheduler "x{16}": 1-15 characters/],
    [() => encodeNewService({ ...TCP80, scheduler: '' }), /scheduler ""/],
    [() => encodeNewService({ ...TCP80, scheduler: 'r r' }), /scheduler "r r"/],
    [() => encodeNewService({ ...TCP80, port: 65536, scheduler: 'rr' }), /ipvs service port 65536: must be an integer 0-65535/],
    [() => encodeNewService({ ...TCP80, port: 1.5, scheduler: 'rr' }), /port 1.5/],
    [() => encodeNewService({ ...TCP80, address: '10.96.0.500', scheduler: 'rr' }), /ipvs service address: invalid IP address "10.96.0.500"/],
    [() => encodeNewService({ ...TCP80, family: 6, scheduler: 'rr' }), /is IPv4 but family is 6/],
    [() => encodeNewService({ ...TCP80, protocol: 'icmp' as 'tcp', scheduler: 'rr' }), /protocol "icmp": must be tcp, udp or sctp/],
    [() => encodeNewService({ family: 4, fwmark: 0, scheduler: 'rr' }), /fwmark 0: must be an integer 1-4294967295/],
    [() => encodeNewService({ family: 5 as 4, fwmark: 1, scheduler: 'rr' }), /FWM 1: family 5 must be 4 or 6/],
    [() => encodeNewService({ ...TCP80, scheduler: 'rr', flags: { persistent: true } }), /TCP 10.96.0.5:80: persistent needs a timeout/],
    [() => encodeNewService({ ...TCP80, scheduler: 'rr', timeout: 60 }), /timeout 60 is the persistence timeout/],
    [() => encodeNewService({ ...TCP80, scheduler: 'rr', flags: { persistent: true }, timeout: 0 }), /timeout 0/],
    [() => encodeNewService({ ...TCP80, scheduler: 'rr', flags: { shPort: true } }), /flag shPort is for the sh scheduler, not rr/],
    [() => encodeNewService({ ...TCP80, scheduler: 'sh', flags: { mhFallback: true } }), /mhFallback is for the mh scheduler/],
    [() => encodeNewService({ ...TCP80, scheduler: 'rr', flags: { hashed: true } as never }), /unknown flag "hashed"/],
    [() => encodeNewService({ ...TCP80, scheduler: 'rr', netmask: 33 }), /netmask 33: must be an integer 0-32/],
    [() => encodeNewService({ protocol: 'tcp', address: 'fd00::1', port: 1, scheduler: 'rr', netmask: 0 }), /netmask 0: must be an integer 1-128/],
    [() => encodeNewService({ protocol: 'tcp', address: 'fd00::1', port: 1, scheduler: 'rr', netmask: 'ffff::' }), /an IPv6 netmask is a prefix length/],
    [() => encodeNewDestination(TCP80, { ...MASQ_DEST, weight: -1 }), /TCP 10.96.0.5:80 -> 10.244.1.5:8080 weight -1: must be an integer 0-2147483647/],
    [() => encodeNewDestination(TCP80, { ...MASQ_DEST, upperThreshold: 5, lowerThreshold: 6 }), /lowerThreshold 6 is above upperThreshold 5/],
    [() => encodeNewDestination(TCP80, { ...MASQ_DEST, port: 70000 }), /port 70000/],
    [() => encodeNewDestination(TCP80, { ...MASQ_DEST, address: 'nope' }), /ipvs destination address: invalid IP address "nope"/],
    [() => encodeNewDestination(TCP80, { ...MASQ_DEST, forward: 'nat' as 'masq' }), /forward "nat" must be one of masq, local, tunnel, route, bypass/],
    [() => encodeNewDestination(TCP80, { address: 'fd00::1', port: 80, forward: 'masq' }), /an IPv6 real server in an IPv4 service needs forward 'tunnel'/],
    [() => encodeNewDestination(TCP80, { ...MASQ_DEST, tunnelType: 'gue', tunnelPort: 1 }), /need forward 'tunnel'/],
    [() => encodeNewDestination(TCP80, { address: '10.0.0.1', port: 0, forward: 'tunnel', tunnelType: 'gue' }), /tunnelPort 0: must be an integer 1-65535/],
    [() => encodeNewDestination(TCP80, { address: '10.0.0.1', port: 0, forward: 'tunnel', tunnelPort: 5 }), /tunnelPort is for tunnelType gue only/],
    [() => encodeSetConfig({}), /give at least one of tcp, tcpFin, udp/],
    [() => encodeSetConfig({ tcp: 0 }), /ipvs config tcp timeout 0: must be an integer 1-2147483/],
    [() => encodeSetConfig({ udp: 3e6 }), /udp timeout 3000000/],
  ];
  for (const [fn, message] of bad) t.throws(fn, message, String(message));
  t.throws(() => encodeNewService({ ...TCP80, port: 65536, scheduler: 'rr' }), RangeError);
  t.doesNotThrow(() => encodeNewService({ ...TCP80, port: 0, scheduler: 'rr' }), 'port 0 (every port, with persistence) is allowed');
  t.doesNotThrow(() => encodeNewDestination(TCP80, { address: 'fd00::1', port: 80, forward: 'tunnel' }), 'mixed families through a tunnel');
  t.doesNotThrow(() => encodeSetConfig({ tcpFin: 30 }), 'one timeout alone');
  t.equal(encodeSetConfig({ tcpFin: 30 }).length, 4 + 8, 'only the timeout given is sent');
});

t.test('describe: ipvsadm -Ln words', async (t) => {
  t.equal(describeIpvsService(TCP80), 'TCP 10.96.0.5:80');
  t.equal(describeIpvsService({ protocol: 'udp', address: 'fd00::5', port: 53 }), 'UDP [fd00::5]:53');
  t.equal(describeIpvsService({ family: 6, fwmark: 7 }), 'FWM 7 IPv6');
  t.equal(describeIpvsDestination(TCP80, { address: 'fd00::1', port: 0 }), 'TCP 10.96.0.5:80 -> [fd00::1]:0');
});

// ---- malformed replies ----------------------------------------------------------------------

const svcReply = (attrs: Attr[], cmd = IPVS_CMD_NEW_SERVICE) => Buffer.concat([encodeGenlHeader(cmd, 1), encodeAttrs(attrs)]);
const realService = () => ipvsMsgs('ipvs-dump-services')[0]!;
// The attributes of the first captured service, to be broken one at a time.
function serviceAttrs(): Array<{ type: number; data: Buffer }> {
  return new Attrs(new Attrs(realService().subarray(GENL_HDRLEN)).raw(IPVS_CMD_ATTR_SERVICE)!).all;
}
const without = (type: number) => svcReply([nla.nested(IPVS_CMD_ATTR_SERVICE, serviceAttrs().filter((a) => a.type !== type).map((a) => ({ type: a.type, value: a.data })))]);
const replacing = (type: number, value: Buffer | Attr[]) => svcReply([nla.nested(IPVS_CMD_ATTR_SERVICE, serviceAttrs().map((a) => (a.type === type ? { type, value } : { type: a.type, value: a.data })))]);

t.test('malformed replies are CodecErrors saying what is wrong, never a crash', async (t) => {
  const cases: Array<[string, () => unknown, RegExp]> = [
    ['empty', () => decodeService(Buffer.alloc(0)), /too short: 0 bytes/],
    ['another command', () => decodeService(svcReply([], IPVS_CMD_NEW_DEST)), /command 5, expected 1 \(IPVS_CMD_NEW_SERVICE\)/],
    ['no service nest', () => decodeService(svcReply([])), /without IPVS_CMD_ATTR_SERVICE/],
    ['nest that is not attributes', () => decodeService(svcReply([nla.bytes(IPVS_CMD_ATTR_SERVICE, Buffer.from([0xff, 0x00, 0x01, 0x00, 0x02]))])), /not a valid nest/],
    ['no AF', () => decodeService(without(IPVS_SVC_ATTR_AF)), /without IPVS_SVC_ATTR_AF/],
    ['AF 7', () => decodeService(replacing(IPVS_SVC_ATTR_AF, nla.u16(0, 7).value as Buffer)), /address family 7/],
    ['short address', () => decodeService(replacing(IPVS_SVC_ATTR_ADDR, Buffer.alloc(2))), /IPVS_SVC_ATTR_ADDR is 2 bytes/],
    ['unknown protocol', () => decodeService(replacing(IPVS_SVC_ATTR_PROTOCOL, nla.u16(0, 51).value as Buffer)), /protocol 51 is not tcp, udp or sctp/],
    ['no port', () => decodeService(without(IPVS_SVC_ATTR_PORT)), /without IPVS_SVC_ATTR_PORT/],
    ['3-byte counter', () => decodeService(replacing(IPVS_SVC_ATTR_STATS, [nla.bytes(1, Buffer.alloc(3))])), /counter conns is 3 bytes/],
    ['stats without counters', () => decodeService(replacing(IPVS_SVC_ATTR_STATS, [])), /STATS without counter conns/],
    ['destination without nest', () => decodeDestination(svcReply([], IPVS_CMD_NEW_DEST)), /without IPVS_CMD_ATTR_DEST/],
    ['destination without family', () => decodeDestination(svcReply([nla.nested(IPVS_CMD_ATTR_DEST, [])], IPVS_CMD_NEW_DEST)), /without IPVS_DEST_ATTR_ADDR_FAMILY/],
    ['config of another command', () => decodeConfig(svcReply([])), /command 1, expected 12/],
    ['config without udp', () => decodeConfig(svcReply([nla.u32(4, 1), nla.u32(5, 1)], 12)), /without IPVS_CMD_ATTR_TIMEOUT_UDP/],
  ];
  for (const [name, fn, message] of cases) t.throws(fn, message, name);
  for (const [name, fn] of cases) {
    try {
      fn();
    } catch (err) {
      t.ok(err instanceof CodecError, `${name}: a CodecError`);
    }
  }
  // Every truncation of a real reply: a CodecError or a (shorter) decode, never another exception.
  const full = realService();
  let codecErrors = 0;
  for (let n = 0; n < full.length; n++) {
    try {
      decodeService(full.subarray(0, n));
    } catch (err) {
      if (!(err instanceof CodecError)) t.fail(`truncated to ${n} bytes: ${(err as Error).name}: ${(err as Error).message}`);
      codecErrors++;
    }
  }
  t.equal(codecErrors, full.length, 'every truncated service reply is refused (its nest length runs past the end)');
  const dest = ipvsMsgs('ipvs-dump-dests')[0]!;
  for (let n = 0; n < dest.length; n++) {
    try {
      decodeDestination(dest.subarray(0, n));
      t.fail(`a destination truncated to ${n} bytes decoded`);
    } catch (err) {
      if (!(err instanceof CodecError)) t.fail(`truncated to ${n} bytes: ${(err as Error).message}`);
    }
  }
  t.throws(() => decodeMsgs(golden('ipvs-dump-services').subarray(0, 100)), CodecError, 'a truncated datagram');
});
