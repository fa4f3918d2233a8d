import t from 'tap';
import { GENL_ID_CTRL, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST } from '../../src/netlink/constants.js';
import { CodecError, encodeAttrs, nla } from '../../src/netlink/codec.js';
import { NetlinkError } from '../../src/netlink/errors.js';
import {
  decodeFamily, encodeGenlHeader, encodeGetFamily, GenlFamilyNotFoundError, genlListFamilies, genlResolveFamily,
} from '../../src/netlink/genl.js';
import { NetlinkSocket } from '../../src/netlink/socket.js';
import { golden } from '../lib/fixtures.js';
import { ackMsg, datagram, doneMsg, errorMsg, FakeTransport, multiMsg, replyMsg } from '../lib/fake-transport.js';


const hexFixture = golden;

const ENOENT = 2;

t.test('genlmsghdr: cmd, version, reserved', async (t) => {
  t.same([...encodeGenlHeader(3, 2)], [3, 2, 0, 0]);
  t.same([...encodeGenlHeader(0x101, 0)], [1, 0, 0, 0], 'cmd is a u8');
});

t.test('encodeGetFamily("nlctrl") is byte-identical to what iproute2 `genl ctrl get name nlctrl` sends', async (t) => {
  const golden = hexFixture('genl-getfamily-nlctrl.hex');
  t.equal(encodeGetFamily('nlctrl').toString('hex'), golden.toString('hex'));
});

t.test('encodeGetFamily: names that the kernel would reject are refused with a clear error', async (t) => {
  t.throws(() => encodeGetFamily(''), { name: 'RangeError', message: /invalid generic netlink family name ""/ });
  t.throws(() => encodeGetFamily('x'.repeat(16)), /1-15 bytes/);
  t.throws(() => encodeGetFamily('a\0b'), /no NUL/);
  t.equal(encodeGetFamily('x'.repeat(15)).length, 4 + 4 + 16, '15 bytes + NUL fits');
});

t.test('decodeFamily: captured kernel reply for nlctrl', async (t) => {
  const fam = decodeFamily(hexFixture('genl-newfamily-nlctrl.hex'));
  t.equal(fam.id, GENL_ID_CTRL);
  t.equal(fam.name, 'nlctrl');
  t.equal(fam.version, 2);
  t.equal(fam.hdrSize, 0);
  t.equal(fam.maxAttr, 0, 'this kernel reports 0 (per-op policies), as `genl ctrl get` shows');
  t.same([...fam.mcastGroups], [['notify', 0x10]]);
});

t.test('decodeFamily: captured kernel reply with several multicast groups (netdev)', async (t) => {
  const fam = decodeFamily(hexFixture('genl-newfamily-netdev.hex'));
  t.equal(fam.name, 'netdev');
  t.equal(fam.id, 0x14);
  t.equal(fam.version, 1);
  t.same([...fam.mcastGroups], [['mgmt', 4], ['page-pool', 5]]);
});

t.test('decodeFamily: synthetic reply with hdrsize/maxattr, and malformed replies', async (t) => {
  const payload = Buffer.concat([
    encodeGenlHeader(1, 2),
    encodeAttrs([
      nla.u16(1, 0x2a), nla.str(2, 'IPVS'), nla.u32(3, 1), nla.u32(4, 8), nla.u32(5, 9),
      { type: 7, nestedFlag: false, value: [{ type: 1, value: [nla.str(1, 'g'), nla.u32(2, 77)] }] },
    ]),
  ]);
  const fam = decodeFamily(payload);
  t.same({ ...fam, mcastGroups: [...fam.mcastGroups] }, {
    id: 0x2a, name: 'IPVS', version: 1, hdrSize: 8, maxAttr: 9, mcastGroups: [['g', 77]],
  });
  t.throws(() => decodeFamily(Buffer.alloc(3)), CodecError);
  t.throws(() => decodeFamily(Buffer.concat([encodeGenlHeader(1, 2), encodeAttrs([nla.str(2, 'x')])])), {
    message: /without CTRL_ATTR_FAMILY_ID/,
  });
  const cut = hexFixture('genl-newfamily-nlctrl.hex').subarray(0, 30);
  t.throws(() => decodeFamily(cut), CodecError, 'a truncated reply is a CodecError');
});

t.test('genlResolveFamily over a fake transport: request framing and decoded answer', async (t) => {
  const reply = hexFixture('genl-newfamily-nlctrl.hex');
  const fake = new FakeTransport({ responder: (req) => [datagram(replyMsg(req, GENL_ID_CTRL, reply)), datagram(ackMsg(req))] });
  const fam = genlResolveFamily(new NetlinkSocket(fake), 'nlctrl');
  t.equal(fam.id, 16);
  const req = fake.requests[0]!;
  t.equal(req.type, GENL_ID_CTRL);
  t.equal(req.flags, NLM_F_REQUEST | NLM_F_ACK, 'same flags as iproute2');
  t.same(req.payload, hexFixture('genl-getfamily-nlctrl.hex'));
});

t.test('genlResolveFamily: ENOENT → GenlFamilyNotFoundError naming the family and the module', async (t) => {
  const fake = new FakeTransport({ responder: (req) => [datagram(errorMsg(req, ENOENT))] });
  const err = t.throws(() => genlResolveFamily(new NetlinkSocket(fake), 'IPVS')) as GenlFamilyNotFoundError;
  t.ok(err instanceof GenlFamilyNotFoundError);
  t.ok(err instanceof NetlinkError, 'callers catching NetlinkError see it too');
  t.equal(err.code, 'ENOENT');
  t.equal(err.family, 'IPVS');
  t.equal(err.message, 'generic netlink family "IPVS" not found (ENOENT): is its kernel module loaded (e.g. modprobe ip_vs)?');
  const other = new FakeTransport({ responder: (req) => [datagram(errorMsg(req, ENOENT))] });
  t.throws(() => genlResolveFamily(new NetlinkSocket(other), 'nosuch'), {
    message: 'generic netlink family "nosuch" not found (ENOENT): is its kernel module loaded?',
  });
});

t.test('genlResolveFamily: other errors pass through unchanged', async (t) => {
  const fake = new FakeTransport({ responder: (req) => [datagram(errorMsg(req, 1))] });
  const err = t.throws(() => genlResolveFamily(new NetlinkSocket(fake), 'IPVS')) as NetlinkError;
  t.notOk(err instanceof GenlFamilyNotFoundError);
  t.equal(err.code, 'EPERM');
  const acked = new FakeTransport({ responder: (req) => [datagram(ackMsg(req))] });
  t.throws(() => genlResolveFamily(new NetlinkSocket(acked), 'IPVS'), /sent no family/);
});

t.test('genlListFamilies: a dump over several datagrams', async (t) => {
  const nlctrl = hexFixture('genl-newfamily-nlctrl.hex');
  const netdev = hexFixture('genl-newfamily-netdev.hex');
  const fake = new FakeTransport({
    responder: (req) => [datagram(multiMsg(req, GENL_ID_CTRL, nlctrl)), datagram(multiMsg(req, GENL_ID_CTRL, netdev), doneMsg(req))],
  });
  const fams = genlListFamilies(new NetlinkSocket(fake));
  t.same(fams.map((f) => [f.name, f.id]), [['nlctrl', 16], ['netdev', 0x14]]);
  const req = fake.requests[0]!;
  t.equal(req.flags, NLM_F_REQUEST | NLM_F_DUMP);
  t.same([...req.payload], [3, 0, 0, 0], 'CTRL_CMD_GETFAMILY with no name: all families');
});
