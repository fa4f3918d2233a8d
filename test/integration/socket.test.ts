// NetlinkSocket against the real kernel, bound to a pw- netns while this process stays in its own.
import t from 'tap';
import fs from 'node:fs';
import { execFileSync } from 'node:child_process';
import {
  IFLA_IFNAME, IFLA_INFO_KIND, IFLA_LINKINFO, IFLA_MTU, NETLINK_ROUTE, NLM_F_CREATE, NLM_F_EXCL, RTM_GETLINK,
  RTM_NEWLINK,
} from '../../src/netlink/constants.js';
import { Attrs, encodePayload, nla } from '../../src/netlink/codec.js';
import { NetlinkError } from '../../src/netlink/errors.js';
import { NetlinkSocket } from '../../src/netlink/socket.js';
import { KernelTransport, type Transport } from '../../src/netlink/transport.js';
import { freshNetns, ipJson, SKIP_NOT_ROOT } from '../lib/netns.js';

const skip = SKIP_NOT_ROOT;
const IFINFOMSG_LEN = 16;
const threadNetns = (): number => fs.statSync('/proc/thread-self/ns/net').ino;

function linkNames(sock: NetlinkSocket): string[] {
  return sock
    .dump(RTM_GETLINK, Buffer.alloc(IFINFOMSG_LEN), { op: 'link list', object: 'all links' })
    .filter((m) => m.type === RTM_NEWLINK)
    .map((m) => new Attrs(m.payload.subarray(IFINFOMSG_LEN)).str(IFLA_IFNAME) ?? '?')
    .sort();
}

/** Counts datagrams so a test can tell a dump really spanned many of them. */
class CountingTransport implements Transport {
  datagrams = 0;
  constructor(private readonly inner: Transport) {}
  get portId(): number {
    return this.inner.portId;
  }
  send(datagram: Buffer): void {
    this.inner.send(datagram);
  }
  recv(): Buffer {
    this.datagrams++;
    return this.inner.recv();
  }
  close(): void {
    this.inner.close();
  }
}

t.test('a socket opened in a netns sees only that netns, the process stays home', { skip }, async (t) => {
  const ns = freshNetns(t, 'sock');
  execFileSync('ip', ['netns', 'exec', ns, 'ip', 'link', 'add', 'pw-br0', 'type', 'bridge']);
  execFileSync('ip', ['netns', 'exec', ns, 'ip', 'link', 'add', 'pw-v0', 'type', 'veth', 'peer', 'name', 'pw-v1']);
  const home = threadNetns();
  const sock = NetlinkSocket.open(NETLINK_ROUTE, { netns: ns });
  t.teardown(() => sock.close());
  t.equal(threadNetns(), home, 'open switched back');
  t.ok(sock.portId > 0, 'bound, with a kernel-assigned port id');
  const oracle = ipJson<Array<{ ifname: string }>>(ns, ['link']).map((l) => l.ifname).sort();
  t.same(linkNames(sock), oracle, 'same links as ip -j link in the netns');
  t.same(oracle, ['lo', 'pw-br0', 'pw-v0', 'pw-v1']);
  t.equal(threadNetns(), home, 'a dump does not switch');
});

t.test('kernel errors come back as NetlinkError with the extack message', { skip }, async (t) => {
  const ns = freshNetns(t, 'err');
  const sock = NetlinkSocket.open(NETLINK_ROUTE, { netns: ns });
  t.teardown(() => sock.close());
  const add = (name: string, mtu?: number) =>
    sock.exec(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, encodePayload(Buffer.alloc(IFINFOMSG_LEN), [
      nla.str(IFLA_IFNAME, name),
      ...(mtu === undefined ? [] : [nla.u32(IFLA_MTU, mtu)]),
      nla.nested(IFLA_LINKINFO, [nla.str(IFLA_INFO_KIND, 'bridge')]),
    ]), { op: 'link add', object: `bridge ${JSON.stringify(name)}` });
  t.same(add('pw-ok'), [], 'ACK');
  const exists = t.throws(() => add('pw-ok')) as NetlinkError;
  t.equal(exists.code, 'EEXIST');
  t.match(exists.message, /link add bridge "pw-ok": EEXIST/);
  const tooSmall = t.throws(() => add('pw-small', 10)) as NetlinkError;
  t.equal(tooSmall.code, 'EINVAL');
  t.match(tooSmall.extack ?? '', /mtu/i, `extack: ${tooSmall.extack}`);
  t.match(tooSmall.message, /kernel says "/);
  t.same(ipJson<Array<{ ifname: string }>>(ns, ['link']).map((l) => l.ifname).sort(), ['lo', 'pw-ok']);
});

t.test('a big dump (~600 links) spans many datagrams and returns every link', { skip, timeout: 300_000 }, async (t) => {
  const ns = freshNetns(t, 'big');
  const pairs = 300;
  const batch = Array.from({ length: pairs }, (_, i) => `link add pw-a${i} type veth peer name pw-b${i}`).join('\n') + '\n';
  execFileSync('ip', ['netns', 'exec', ns, 'ip', '-batch', '-'], { input: batch, stdio: ['pipe', 'ignore', 'pipe'] });
  const counting = new CountingTransport(KernelTransport.open(NETLINK_ROUTE, { netns: ns }));
  const sock = new NetlinkSocket(counting);
  t.teardown(() => sock.close());
  const names = linkNames(sock);
  t.equal(names.length, 2 * pairs + 1);
  t.ok(names.includes('pw-a0') && names.includes(`pw-b${pairs - 1}`) && names.includes('lo'));
  t.equal(new Set(names).size, names.length, 'no link twice');
  t.ok(counting.datagrams > 10, `${counting.datagrams} datagrams`);
  t.equal(ipJson<unknown[]>(ns, ['link']).length, names.length, 'the oracle agrees');
});
