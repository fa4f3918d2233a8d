import t from 'tap';
import {
  NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_EXCL, NLM_F_MULTI, NLM_F_REQUEST, NLMSG_OVERRUN,
  RTM_GETLINK, RTM_NEWLINK,
} from '../../src/netlink/constants.js';
import { NetlinkError } from '../../src/netlink/errors.js';
import { decodeError, NetlinkSocket } from '../../src/netlink/socket.js';
import type { NlMsg } from '../../src/netlink/codec.js';
import { ackMsg, datagram, doneMsg, errorMsg, FakeTransport, multiMsg, replyMsg } from '../lib/fake-transport.js';

const EEXIST = 17;
const EINVAL = 22;
const EINTR = 4;
const ENOBUFS = 105;
const ctx = { op: 'link add', object: 'veth "pw1"' };
const ifinfo = Buffer.alloc(16);

function linkPayload(n: number): Buffer {
  const b = Buffer.alloc(16);
  b.writeInt32LE(n, 4);
  return b;
}

function setup(responder?: (req: NlMsg, i: number) => Buffer[]) {
  const fake = new FakeTransport(responder ? { responder } : {});
  return { fake, sock: new NetlinkSocket(fake) };
}

t.test('exec: ACK is success; the request carries REQUEST|ACK, the caller flags and a fresh seq', async (t) => {
  const { fake, sock } = setup((req) => [datagram(ackMsg(req))]);
  t.same(sock.exec(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, ifinfo, ctx), []);
  t.same(sock.exec(RTM_NEWLINK, 0, ifinfo, ctx), []);
  const [first, second] = fake.requests;
  t.equal(first!.type, RTM_NEWLINK);
  t.equal(first!.flags, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
  t.equal(first!.payload.length, 16);
  t.equal(second!.seq, (first!.seq + 1) & 0x7fffffff, 'seq increments per request');
  t.equal(sock.portId, 4242);
});

t.test('exec: replies before the ACK are returned (e.g. a genl getfamily answer)', async (t) => {
  const { sock } = setup((req) => [datagram(replyMsg(req, 16, Buffer.from('fam1'))), datagram(ackMsg(req))]);
  const replies = sock.exec(16, 0, Buffer.alloc(4), { op: 'genl getfamily', object: 'x' });
  t.equal(replies.length, 1);
  t.equal(replies[0]!.payload.toString(), 'fam1');
});

t.test('exec: NLMSG_ERROR with errno → NetlinkError with code, op and object', async (t) => {
  const { sock } = setup((req) => [datagram(errorMsg(req, EEXIST))]);
  const err = t.throws(() => sock.exec(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, ifinfo, ctx)) as NetlinkError;
  t.ok(err instanceof NetlinkError);
  t.equal(err.errno, EEXIST);
  t.equal(err.code, 'EEXIST');
  t.equal(err.operation, 'link add');
  t.equal(err.object, 'veth "pw1"');
  t.equal(err.extack, undefined);
  t.match(err.message, /^netlink link add veth "pw1": EEXIST File exists/);
  t.match(err.message, /already exists/, 'with a hint');
});

for (const capped of [true, false]) {
  t.test(`exec: extended ack text (${capped ? 'capped' : 'full'} echo) lands in the error`, async (t) => {
    const payload = Buffer.concat([ifinfo, Buffer.alloc(29, 0x55)]); // odd length: the TLVs start realigned
    const { sock } = setup((req) => [datagram(errorMsg(req, EINVAL, { capped, extack: 'MTU too small' }))]);
    const err = t.throws(() => sock.exec(RTM_NEWLINK, 0, payload, ctx)) as NetlinkError;
    t.equal(err.errno, EINVAL);
    t.equal(err.extack, 'MTU too small');
    t.match(err.message, /kernel says "MTU too small"/);
  });
}

t.test('decodeError: ACK, plain error, truncated payloads', async (t) => {
  const req: NlMsg = { type: RTM_NEWLINK, flags: NLM_F_REQUEST, seq: 5, pid: 0, payload: ifinfo };
  t.same(decodeError(ackMsg(req)), { errno: 0 });
  t.same(decodeError(errorMsg(req, EEXIST)), { errno: EEXIST });
  t.same(decodeError({ ...req, type: 2, payload: Buffer.alloc(2) }).errno, 5, 'a truncated nlmsgerr is EIO, not a crash');
  const tlvsButShort = { ...errorMsg(req, EINVAL, { extack: 'x' }) };
  tlvsButShort.payload = tlvsButShort.payload.subarray(0, 10);
  t.same(decodeError(tlvsButShort), { errno: EINVAL }, 'TLV flag with a cut echo: errno only');
});

t.test('dump: parts over several datagrams until NLMSG_DONE', async (t) => {
  const { fake, sock } = setup((req) => [
    datagram(multiMsg(req, RTM_NEWLINK, linkPayload(1)), multiMsg(req, RTM_NEWLINK, linkPayload(2))),
    datagram(multiMsg(req, RTM_NEWLINK, linkPayload(3))),
    datagram(multiMsg(req, RTM_NEWLINK, linkPayload(4)), doneMsg(req)),
  ]);
  const links = sock.dump(RTM_GETLINK, ifinfo, { op: 'link list', object: 'all links' });
  t.same(links.map((m) => m.payload.readInt32LE(4)), [1, 2, 3, 4]);
  t.equal(fake.recvCalls, 3);
  t.equal(fake.requests[0]!.flags, NLM_F_REQUEST | NLM_F_DUMP, 'a dump asks for no ACK');
});

t.test('replies with a stale seq (an abandoned earlier request) are ignored', async (t) => {
  const { fake, sock } = setup((req) => {
    const stale = { ...req, seq: req.seq - 1 };
    return [
      datagram(errorMsg(stale, EEXIST), multiMsg(stale, RTM_NEWLINK, linkPayload(99))),
      datagram(multiMsg(req, RTM_NEWLINK, linkPayload(1)), doneMsg(stale, EINVAL), doneMsg(req)),
    ];
  });
  const links = sock.dump(RTM_GETLINK, ifinfo, ctx);
  t.same(links.map((m) => m.payload.readInt32LE(4)), [1]);
  t.equal(fake.sent.length, 1);
  const exec = setup((req) => [datagram(errorMsg({ ...req, seq: 1 }, EEXIST)), datagram(ackMsg(req))]);
  t.same(exec.sock.exec(RTM_NEWLINK, 0, ifinfo, ctx), [], 'a stale error does not fail the new request');
});

t.test('dump: NLM_F_DUMP_INTR is retried and the clean attempt is returned', async (t) => {
  const { fake, sock } = setup((req, i) =>
    i < 2
      ? [datagram(multiMsg(req, RTM_NEWLINK, linkPayload(i), NLM_F_DUMP_INTR)), datagram(doneMsg(req, 0, NLM_F_DUMP_INTR))]
      : [datagram(multiMsg(req, RTM_NEWLINK, linkPayload(7)), doneMsg(req))],
  );
  const links = sock.dump(RTM_GETLINK, ifinfo, ctx);
  t.same(links.map((m) => m.payload.readInt32LE(4)), [7], 'nothing from the interrupted attempts leaks in');
  t.equal(fake.sent.length, 3);
  t.not(fake.requests[0]!.seq, fake.requests[2]!.seq, 'each attempt has its own seq');
});

t.test('dump: DUMP_INTR only on a middle part still counts', async (t) => {
  const { fake, sock } = setup((req, i) => [
    datagram(multiMsg(req, RTM_NEWLINK, linkPayload(1), i === 0 ? NLM_F_DUMP_INTR : 0), doneMsg(req)),
  ]);
  t.equal(sock.dump(RTM_GETLINK, ifinfo, ctx).length, 1);
  t.equal(fake.sent.length, 2);
});

t.test('dump: gives up with EINTR after the attempt limit', async (t) => {
  const { fake, sock } = setup((req) => [datagram(multiMsg(req, RTM_NEWLINK, linkPayload(1), NLM_F_DUMP_INTR), doneMsg(req))]);
  const err = t.throws(() => sock.dump(RTM_GETLINK, ifinfo, { op: 'link list', object: 'all links' })) as NetlinkError;
  t.ok(err instanceof NetlinkError);
  t.equal(err.errno, EINTR);
  t.equal(err.code, 'EINTR');
  t.match(err.message, /link list all links: EINTR/);
  t.match(err.message, /dump interrupted/);
  t.equal(fake.sent.length, 5);
});

t.test('dump: NLMSG_DONE carrying a negative errno is an error', async (t) => {
  const { sock } = setup((req) => [datagram(multiMsg(req, RTM_NEWLINK, linkPayload(1)), doneMsg(req, ENOBUFS))]);
  const err = t.throws(() => sock.dump(RTM_GETLINK, ifinfo, ctx)) as NetlinkError;
  t.equal(err.errno, ENOBUFS);
  t.equal(err.code, 'ENOBUFS');
});

t.test('dump: an NLMSG_ERROR instead of parts fails the dump', async (t) => {
  const { sock } = setup((req) => [datagram(errorMsg(req, EINVAL, { extack: 'Invalid header for link dump' }))]);
  const err = t.throws(() => sock.dump(RTM_GETLINK, ifinfo, ctx)) as NetlinkError;
  t.equal(err.extack, 'Invalid header for link dump');
});

t.test('NLMSG_OVERRUN → ENOBUFS', async (t) => {
  const { sock } = setup((req) => [datagram(replyMsg(req, NLMSG_OVERRUN, Buffer.alloc(0), NLM_F_MULTI))]);
  const err = t.throws(() => sock.dump(RTM_GETLINK, ifinfo, ctx)) as NetlinkError;
  t.equal(err.errno, ENOBUFS);
});

t.test('no reply: the transport timeout surfaces, nothing hangs; close reaches the transport', async (t) => {
  const { sock, fake } = setup();
  t.throws(() => sock.exec(RTM_NEWLINK, 0, ifinfo, ctx), { code: 'EAGAIN' });
  sock.close();
  t.ok(fake.closed);
});
