// Generic netlink family resolution against the kernel, with iproute2's `genl ctrl` as the oracle.
// Sockets are opened in a pw- netns; nothing is changed anywhere.
import t from 'tap';
import { GENL_ID_CTRL, NETLINK_GENERIC } from '../../src/netlink/constants.js';
import { NetlinkError } from '../../src/netlink/errors.js';
import { GenlFamilyNotFoundError, genlListFamilies, genlResolveFamily, type GenlFamily } from '../../src/netlink/genl.js';
import { NetlinkSocket } from '../../src/netlink/socket.js';
import { freshNetns, run, SKIP_NOT_ROOT } from '../lib/netns.js';

const skip = SKIP_NOT_ROOT;

interface Plain {
  id: number;
  name: string;
  version: number;
  hdrSize: number;
  maxAttr: number;
  mcastGroups: Array<[string, number]>;
}

/** Parse `genl ctrl list` / `genl ctrl get` output: one block per "Name:" line. */
function parseGenlCtrl(text: string): Plain[] {
  return text
    .split(/^Name: /m)
    .slice(1)
    .map((block) => {
      const name = block.split('\n', 1)[0]!.trim();
      const m = /ID: (0x[0-9a-f]+)\s+Version: (0x[0-9a-f]+)\s+header size: (\d+)\s+max attribs: (\d+)/.exec(block);
      if (!m) throw new Error(`unexpected genl output for ${name}: ${block}`);
      const groupsText = block.split('multicast groups:')[1] ?? '';
      const mcastGroups = [...groupsText.matchAll(/ID-(0x[0-9a-f]+)\s+name: (\S+)/g)].map(
        (g): [string, number] => [g[2]!, Number(g[1])],
      );
      return { id: Number(m[1]), name, version: Number(m[2]), hdrSize: Number(m[3]), maxAttr: Number(m[4]), mcastGroups };
    });
}

const plain = (f: GenlFamily): Plain => ({ ...f, mcastGroups: [...f.mcastGroups] });

function openGenl(t: { teardown(fn: () => void): void }): { ns: string; sock: NetlinkSocket } {
  const ns = freshNetns(t, 'genl');
  const sock = NetlinkSocket.open(NETLINK_GENERIC, { netns: ns });
  t.teardown(() => sock.close());
  return { ns, sock };
}

// A second family to resolve: one with multicast groups, so the group decoding is checked too.
function pickOther(listed: Plain[]): Plain | undefined {
  return listed.find((f) => f.name !== 'nlctrl' && f.mcastGroups.length > 0) ?? listed.find((f) => f.name !== 'nlctrl');
}

t.test('resolves nlctrl and another family exactly as `genl ctrl get name` reports them', { skip }, async (t) => {
  const { ns, sock } = openGenl(t);
  const nlctrl = genlResolveFamily(sock, 'nlctrl');
  t.equal(nlctrl.id, GENL_ID_CTRL, 'nlctrl is always 16');
  t.same(plain(nlctrl), parseGenlCtrl(run(ns, 'genl', ['ctrl', 'get', 'name', 'nlctrl']))[0]);

  const other = pickOther(parseGenlCtrl(run(ns, 'genl', ['ctrl', 'list'])));
  if (!other) return t.fail('this kernel lists no family besides nlctrl');
  t.comment(`second family: ${other.name}`);
  const resolved = genlResolveFamily(sock, other.name);
  t.same(plain(resolved), parseGenlCtrl(run(ns, 'genl', ['ctrl', 'get', 'name', other.name]))[0]);
  t.not(resolved.id, GENL_ID_CTRL);
});

t.test('a missing family (IPVS here) gives a clear not-found error', { skip }, async (t) => {
  const { ns, sock } = openGenl(t);
  const listed = parseGenlCtrl(run(ns, 'genl', ['ctrl', 'list'])).map((f) => f.name);
  const missing = listed.includes('IPVS') ? 'pw-nosuchfam' : 'IPVS';
  const err = t.throws(() => genlResolveFamily(sock, missing)) as GenlFamilyNotFoundError;
  t.ok(err instanceof GenlFamilyNotFoundError);
  t.ok(err instanceof NetlinkError);
  t.equal(err.code, 'ENOENT');
  t.match(err.message, new RegExp(`generic netlink family "${missing}" not found \\(ENOENT\\): is its kernel module loaded`));
  t.equal(genlResolveFamily(sock, 'nlctrl').id, GENL_ID_CTRL, 'the socket is still usable afterwards');
});

t.test('genlListFamilies matches `genl ctrl list`', { skip }, async (t) => {
  const { ns, sock } = openGenl(t);
  const ours = genlListFamilies(sock).map(plain);
  const oracle = parseGenlCtrl(run(ns, 'genl', ['ctrl', 'list']));
  const byName = (a: Plain, b: Plain) => a.name.localeCompare(b.name);
  t.ok(ours.some((f) => f.name === 'nlctrl' && f.id === GENL_ID_CTRL), 'contains nlctrl');
  const other = pickOther(oracle);
  if (other) t.ok(ours.some((f) => f.name === other.name), `contains ${other.name}`);
  t.same(ours.sort(byName), oracle.sort(byName), 'every family, field by field');
});
