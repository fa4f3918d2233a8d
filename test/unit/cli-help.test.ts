// `podwire CMD --help` / `-h` for every debugging command: its usage on stdout, exit 0 (the
// flag parser alone would call --help an unknown flag).
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

for (const cmd of ['status', 'peers', 'routes', 'ping', 'explain', 'trace', 'services', 'connectivity', 'doctor']) {
  t.test(`podwire ${cmd} --help`, async (t) => {
    for (const flag of ['--help', '-h']) {
      const r = spawnSync(process.execPath, [CLI, cmd, flag], { encoding: 'utf8', timeout: 20_000 });
      t.equal(r.status, 0, `${flag}: exit 0`);
      t.match(r.stdout, new RegExp(`^usage: podwire ${cmd === 'routes' ? '(peers|routes)' : cmd}`), `${flag}: its usage`);
    }
  });
}
t.test('an unknown flag is still a usage error (exit 2)', async (t) => {
  const r = spawnSync(process.execPath, [CLI, 'doctor', '--bogus'], { encoding: 'utf8', timeout: 20_000 });
  t.equal(r.status, 2);
  t.match(r.stderr, /bogus/);
});
