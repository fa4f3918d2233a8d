// The benchmarks must keep working: a tiny run of `bench netlink` (3 pairs, every method) does the
// work, verifies it with ip -j, prints the table with ratios and leaves no namespace behind.
import t from 'tap';
import { execFileSync, spawnSync } from 'node:child_process';
import { listNetns } from '../../src/netns/netns.js';
import { SKIP_NOT_ROOT } from '../lib/netns.js';
import { BENCH_MAIN } from '../lib/bench-smoke.js';


t.test('bench netlink: small run of every method is verified and reported', { skip: SKIP_NOT_ROOT }, async (t) => {
  const out = execFileSync('node', [BENCH_MAIN, 'netlink', '--pairs', '3', '--methods', 'lib,lib-get,exec,batch'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  for (const label of ['library ', 'library+get', 'ip exec', 'ip -batch']) t.match(out, new RegExp(`^${label.replace(/[+]/g, '\\+')}\\s+\\d`, 'm'), `${label.trim()} row`);
  // 3 pairs is timing noise: the sentence may say slower, faster or on par, but it is always there.
  t.match(out, /^ip exec: (\d+\.\d× (slower|faster) than|on par with) the library/m, 'ratio sentence');
  t.match(out, /process floor: fork\+exec/);
  t.same(listNetns().filter((n) => n.startsWith('pw-bench-')), [], 'no bench namespace left');
});

t.test('bench: bad names and flags are usage errors (exit 2) that change nothing', async (t) => {
  for (const args of [['nope'], ['netlink', '--pairs', '0'], ['netlink', '--methods', 'lib,zzz'], ['netlink', 'extra']]) {
    const r = spawnSync('node', [BENCH_MAIN, ...args], { encoding: 'utf8' });
    t.equal(r.status, 2, `${args.join(' ')} exits 2`);
    t.match(r.stderr, /^bench: /, `${args.join(' ')} explains: ${r.stderr.split('\n')[0]}`);
  }
});
