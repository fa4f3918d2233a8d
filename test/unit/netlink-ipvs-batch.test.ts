// NetlinkSocket.execBatch and IpvsClient.applyBatch over the scripted transport, answering as the
// kernel does: an ACK only for a request with NLM_F_ACK, an error message for every failure.
import t from 'tap';
import { NetlinkSocket } from '../../src/netlink/socket.js';
import { IpvsClient, type IpvsChange } from '../../src/netlink/ipvs-client.js';
import { encodeGenlHeader } from '../../src/netlink/genl.js';
import { encodeAttrs, nla, type NlMsg } from '../../src/netlink/codec.js';
import { GENL_ID_CTRL, NLM_F_ACK } from '../../src/netlink/constants.js';
import { ackMsg, datagram, errorMsg, FakeTransport, replyMsg } from '../lib/fake-transport.js';

const IPVS_ID = 0x20;
const EEXIST = 17;

function setup(fails: (req: NlMsg, n: number) => number | undefined) {
  let n = 0;
  const fake = new FakeTransport({
    responder: (req) => {
      if (req.type === GENL_ID_CTRL) {
        const payload = Buffer.concat([encodeGenlHeader(1, 2), encodeAttrs([nla.u16(1, IPVS_ID), nla.str(2, 'IPVS'), nla.u32(3, 1)])]);
        return [datagram(replyMsg(req, GENL_ID_CTRL, payload), ackMsg(req))];
      }
      const errno = fails(req, n++);
      if (errno) return [datagram(errorMsg(req, errno))];
      return req.flags & NLM_F_ACK ? [datagram(ackMsg(req))] : [];
    },
  });
  return { fake, sock: new NetlinkSocket(fake) };
}

t.test('execBatch: few datagrams, one ACK per chunk, errors where they happened', async (t) => {
  const { fake, sock } = setup((_r, n) => (n === 3 || n === 700 ? EEXIST : undefined));
  const reqs = Array.from({ length: 1000 }, (_, i) => ({ type: IPVS_ID, flags: 0, payload: Buffer.alloc(60, i & 255), ctx: { op: 'ipvs add service', object: `TCP 10.96.0.${i}:80` } }));
  const res = sock.execBatch(reqs);
  t.equal(res.length, 1000);
  t.same(res.flatMap((e, i) => (e ? [`${i} ${e.errno} ${e.message.split(': ')[0]}`] : [])), [
    '3 17 netlink ipvs add service TCP 10.96.0.3:80',
    '700 17 netlink ipvs add service TCP 10.96.0.700:80',
  ], 'the failures, each naming its object; the others undefined');
  t.ok(fake.sent.length <= Math.ceil((1000 * 76) / 32768) + 1, `${fake.sent.length} datagrams for 1000 requests`);
  const acked = fake.requests.filter((r) => r.flags & NLM_F_ACK);
  t.equal(acked.length, fake.sent.length, 'only the last request of each datagram asks for an ACK');
  t.equal(fake.recvCalls, fake.sent.length + 2, 'one receive per chunk plus one per failure');
  t.same(sock.execBatch([]), [], 'nothing to do: nothing sent');
});

t.test('applyBatch: IpvsClient changes in one go, failures as IpvsError with their reason', async (t) => {
  const { fake, sock } = setup((_r, n) => (n === 1 ? EEXIST : undefined));
  const ipvs = IpvsClient.over(sock);
  const key = { protocol: 'tcp' as const, address: '10.96.0.5', port: 80 };
  const changes: IpvsChange[] = [
    { op: 'addService', spec: { ...key, scheduler: 'rr' } },
    { op: 'addDestination', key, dest: { address: '10.244.1.5', port: 8080, forward: 'masq', weight: 1 } },
    { op: 'editDestination', key, dest: { address: '10.244.1.6', port: 8080, forward: 'masq', weight: 0 } },
    { op: 'delDestination', key, dest: { address: '10.244.1.7', port: 8080 } },
    { op: 'editService', spec: { ...key, scheduler: 'wrr', flags: { persistent: true }, timeout: 60, netmask: 32 } },
    { op: 'delService', key },
  ];
  const before = fake.sent.length;
  const res = ipvs.applyBatch(changes);
  t.equal(fake.sent.length - before, 1, 'six changes, one datagram');
  t.equal(res.filter(Boolean).length, 1);
  t.equal(res[1]?.reason, 'exists');
  t.match(res[1]?.message ?? '', /^ipvs add destination TCP 10\.96\.0\.5:80 -> 10\.244\.1\.5:8080: File exists \(EEXIST\)/);
  t.same(fake.requests.slice(-6).map((r) => r.payload[0]), [1, 5, 6, 7, 2, 3], 'the commands in order (IPVS_CMD_NEW_SERVICE … DEL_SERVICE)');
});
