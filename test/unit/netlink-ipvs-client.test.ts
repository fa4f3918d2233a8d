// IpvsClient over the scripted transport: family resolution, what each operation sends (message
// type, flags, payload), dumps across datagrams, ACKs, and the kernel's own error replies
// (captured in the VM: test/fixtures/netlink/ipvs-err-*.hex) mapped to IpvsError.
import t from 'tap';
import { decodeMsgs, encodeAttrs, encodeMsg, nla, type NlMsg } from '../../src/netlink/codec.js';
import { GENL_ID_CTRL, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST } from '../../src/netlink/constants.js';
import { NetlinkError } from '../../src/netlink/errors.js';
import { encodeGenlHeader, GenlFamilyNotFoundError } from '../../src/netlink/genl.js';
import {
  encodeDelDestination, encodeDelService, encodeGetDestinations, encodeGetServices, encodeNewDestination,
  encodeNewService, encodeSetConfig, type IpvsServiceKey,
} from '../../src/netlink/ipvs.js';
import { IpvsClient, IpvsError } from '../../src/netlink/ipvs-client.js';
import { IPVS_CMD_FLUSH, IPVS_CMD_GET_CONFIG, IPVS_CMD_GET_INFO, IPVS_CMD_GET_SERVICE } from '../../src/netlink/ipvs-constants.js';
import { NetlinkSocket } from '../../src/netlink/socket.js';
import { golden } from '../lib/fixtures.js';
import { ackMsg, datagram, doneMsg, errorMsg, FakeTransport, multiMsg, replyMsg } from '../lib/fake-transport.js';

const IPVS_ID = 0x20; // the id the VM's kernel gave the family in the captures
const TCP80: IpvsServiceKey = { protocol: 'tcp', address: '10.96.0.5', port: 80 };

function familyReply(req: NlMsg): Buffer {
  const payload = Buffer.concat([encodeGenlHeader(1, 2), encodeAttrs([nla.u16(1, IPVS_ID), nla.str(2, 'IPVS'), nla.u32(3, 1)])]);
  return datagram(replyMsg(req, GENL_ID_CTRL, payload), ackMsg(req));
}

/** Captured reply datagrams, with every message's seq set to the request's (as the kernel would). */
function replay(name: string, req: NlMsg): Buffer {
  return Buffer.concat(decodeMsgs(golden(name)).map((m) => encodeMsg({ ...m, seq: req.seq })));
}

/** A client whose IPVS requests are answered by `answer` (the family lookup is answered first). */
function client(answer: (req: NlMsg) => Buffer[]): { ipvs: IpvsClient; fake: FakeTransport } {
  const fake = new FakeTransport({ responder: (req) => (req.type === GENL_ID_CTRL ? [familyReply(req)] : answer(req)) });
  return { ipvs: IpvsClient.over(new NetlinkSocket(fake)), fake };
}

const ipvsRequests = (fake: FakeTransport) => fake.requests.filter((r) => r.type === IPVS_ID);

t.test('open resolves the family by name; a missing family says modprobe ip_vs', async (t) => {
  const { ipvs, fake } = client(() => []);
  t.equal(ipvs.family.id, IPVS_ID);
  t.equal(fake.requests[0]!.type, GENL_ID_CTRL);
  t.match(fake.requests[0]!.payload.toString('latin1'), /IPVS\0/);
  const missing = new FakeTransport({ responder: (req) => [datagram(errorMsg(req, 2))] });
  const err = t.throws(() => IpvsClient.over(new NetlinkSocket(missing))) as Error;
  t.ok(err instanceof GenlFamilyNotFoundError);
  t.match(err.message, /generic netlink family "IPVS" not found \(ENOENT\): is its kernel module loaded \(e\.g\. modprobe ip_vs\)\?/);
});

t.test('changes: one request each, flags REQUEST|ACK, the codec payload, done at the ACK', async (t) => {
  const { ipvs, fake } = client((req) => [datagram(ackMsg(req))]);
  const spec = { ...TCP80, scheduler: 'rr' };
  const dest = { address: '10.244.1.5', port: 8080, forward: 'masq' as const };
  ipvs.addService(spec);
  ipvs.addDestination(TCP80, dest);
  ipvs.delDestination(TCP80, dest);
  ipvs.delService(TCP80);
  ipvs.setConfig({ tcp: 900 });
  ipvs.flush();
  const sent = ipvsRequests(fake);
  t.same(sent.map((r) => r.flags), Array(6).fill(NLM_F_REQUEST | NLM_F_ACK));
  t.same(sent.map((r) => r.payload.toString('hex')), [
    encodeNewService(spec), encodeNewDestination(TCP80, dest), encodeDelDestination(TCP80, dest), encodeDelService(TCP80),
    encodeSetConfig({ tcp: 900 }), Buffer.from([IPVS_CMD_FLUSH, 1, 0, 0]),
  ].map((b) => b.toString('hex')));
});

t.test('bad input throws before anything is sent', async (t) => {
  const { ipvs, fake } = client((req) => [datagram(ackMsg(req))]);
  t.throws(() => ipvs.addService({ ...TCP80, scheduler: 'x'.repeat(20) }), RangeError);
  t.throws(() => ipvs.addDestination(TCP80, { address: '10.0.0.1', port: 1, forward: 'masq', weight: -3 }), RangeError);
  t.equal(ipvsRequests(fake).length, 0);
});

t.test('listServices: a dump (REQUEST|DUMP) of the captured table, decoded', async (t) => {
  const { ipvs, fake } = client((req) => [replay('ipvs-dump-services', req)]);
  const services = ipvs.listServices();
  t.equal(services.length, 4);
  t.match(services.find((s) => s.port === 80), { address: '10.96.0.5', stats64: { conns: 3, inBytes: 804 } });
  const req = ipvsRequests(fake)[0]!;
  t.equal(req.flags, NLM_F_REQUEST | NLM_F_DUMP);
  t.same(req.payload, encodeGetServices());
});

t.test('listServices: parts over several datagrams until NLMSG_DONE', async (t) => {
  const msgs = decodeMsgs(golden('ipvs-dump-services')).filter((m) => m.type === IPVS_ID);
  const { ipvs } = client((req) => [
    ...msgs.map((m) => datagram(multiMsg(req, IPVS_ID, m.payload))),
    datagram(doneMsg(req)),
  ]);
  t.equal(ipvs.listServices().length, msgs.length);
});

t.test('listDestinations, getService, getConfig, info', async (t) => {
  const { ipvs, fake } = client((req) => {
    const cmd = req.payload[0];
    if (cmd === IPVS_CMD_GET_SERVICE) return [replay('ipvs-get-service-reply', req), datagram(ackMsg(req))];
    if (cmd === IPVS_CMD_GET_CONFIG) return [replay('ipvs-get-config-reply', req), datagram(ackMsg(req))];
    if (cmd === IPVS_CMD_GET_INFO) return [replay('ipvs-get-info-reply', req), datagram(ackMsg(req))];
    return [replay('ipvs-dump-dests', req)];
  });
  t.match(ipvs.listDestinations(TCP80), [{ address: '10.0.1.2', port: 8080, forward: 'masq', weight: 2, inactiveConns: 3 }]);
  t.same(ipvsRequests(fake).at(-1)!.payload, encodeGetDestinations(TCP80));
  t.match(ipvs.getService(TCP80), { address: '10.96.0.5', scheduler: 'rr' });
  t.equal(ipvsRequests(fake).at(-1)!.flags, NLM_F_REQUEST | NLM_F_ACK, 'one service: a request, not a dump');
  t.same(ipvs.getConfig(), { tcp: 900, tcpFin: 120, udp: 300 });
  t.same(ipvs.info(), { version: '1.2.1', connTableSize: 4096 });
});

t.test("the kernel's errors become IpvsError naming the operation and the object", async (t) => {
  const cases: Array<[string, (c: IpvsClient) => void, string, string, RegExp]> = [
    ['ipvs-err-eexist-service', (c) => c.addService({ ...TCP80, scheduler: 'rr' }), 'EEXIST', 'exists',
      /^ipvs add service TCP 10\.96\.0\.5:80: File exists \(EEXIST\): the virtual service already exists: edit it, or delete it first$/],
    ['ipvs-err-esrch', (c) => c.delService({ protocol: 'tcp', address: '10.96.0.9', port: 80 }), 'ESRCH', 'no-service',
      /^ipvs del service TCP 10\.96\.0\.9:80: No such process \(ESRCH\): no such virtual service/],
    ['ipvs-err-enoent-scheduler', (c) => c.addService({ protocol: 'tcp', address: '10.96.0.9', port: 80, scheduler: 'nosuch' }), 'ENOENT', 'no-scheduler',
      /^ipvs add service TCP 10\.96\.0\.9:80: No such file or directory \(ENOENT\): scheduler "nosuch" \(or the persistence engine\) not found: is the module available \(modprobe ip_vs_nosuch\)\?$/],
    ['ipvs-err-enoent-dest', (c) => c.delDestination(TCP80, { address: '10.0.1.9', port: 80 }), 'ENOENT', 'no-destination',
      /^ipvs del destination TCP 10\.96\.0\.5:80 -> 10\.0\.1\.9:80: No such file or directory \(ENOENT\): no such real server in this service$/],
  ];
  for (const [fixture, op, code, reason, message] of cases) {
    const { ipvs } = client((req) => [replay(fixture, req)]);
    const err = t.throws(() => op(ipvs)) as IpvsError;
    t.ok(err instanceof IpvsError && err instanceof NetlinkError, `${fixture}: an IpvsError, so a NetlinkError too`);
    t.equal(err.code, code);
    t.equal(err.reason, reason);
    t.match(err.message, message);
  }
  const { ipvs } = client((req) => [datagram(errorMsg(req, 17))]);
  t.match(t.throws(() => ipvs.addDestination(TCP80, { address: '10.0.1.2', port: 8080, forward: 'masq' })), {
    reason: 'exists', message: /^ipvs add destination TCP 10\.96\.0\.5:80 -> 10\.0\.1\.2:8080: File exists \(EEXIST\): the real server is already in this service: edit it instead$/,
  });
  const perm = client((req) => [datagram(errorMsg(req, 1, { extack: 'nope' }))]).ipvs;
  t.match(t.throws(() => perm.flush()), { reason: 'other', message: /^ipvs flush all services: Operation not permitted \(EPERM\): kernel says "nope": operation not permitted: run as root/ });
});

t.test('findService: undefined for ESRCH, other errors thrown', async (t) => {
  const gone = client((req) => [replay('ipvs-err-esrch', req)]).ipvs;
  t.equal(gone.findService({ protocol: 'tcp', address: '10.96.0.9', port: 80 }), undefined);
  const denied = client((req) => [datagram(errorMsg(req, 1))]).ipvs;
  t.throws(() => denied.findService(TCP80), { code: 'EPERM' });
  const empty = client((req) => [datagram(ackMsg(req))]).ipvs;
  t.throws(() => empty.getService(TCP80), /acknowledged without an answer/);
});

t.test('close: closes the socket only when the client opened it', async (t) => {
  const { ipvs, fake } = client(() => []);
  ipvs.close();
  t.equal(fake.closed, false, 'over(): the caller keeps its socket');
});
