// A real runtime: podman (CNI backend, inside its own pw- netns) runs two containers on a podwire
// network; one pings the other; removing the container releases its IP and host veth.
// The whole flow is scripts/podman-demo, which is also how a user can see it work.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { listNetns } from '../../src/netns/netns.js';
import { SKIP_NOT_ROOT } from '../lib/netns.js';

const script = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..', '..', 'scripts', 'podman-demo');

t.test('podman with the CNI backend: two containers on a podwire network ping each other', { skip: SKIP_NOT_ROOT }, async (t) => {
  const r = spawnSync('bash', [script], { encoding: 'utf8', timeout: 180_000 });
  t.equal(r.status, 0, `podman-demo exits 0\n${r.stdout}\n${r.stderr}`);
  t.match(r.stdout, /3 packets transmitted, 3 packets received/, 'pw-b pings pw-a');
  t.match(r.stdout, /after podman rm: 0 reservations, 0 host veths/, 'podman rm ran CNI DEL');
  t.same(listNetns().filter((n) => n.startsWith('pw-podman-')), [], 'no namespace left');
});
