// Issue 19 item 6: paths built from input can never leave their directory. Property tests
// (fast-check, 10,000 cases each) over the inputs that end up in file names: network names (the
// IPAM store's directory under dataDir), IP reservation names, the delegated IPAM plugin's type
// (a file in a CNI_PATH directory), container IDs and ifnames (the host veth's name, the fast DEL's
// journal file). Each input is either refused with a clear error or gives a direct child of its
// directory; hostile strings (../, /, NUL, ".", "..", long, control characters) are mixed in.
import t from 'tap';
import fc from 'fast-check';
import path from 'node:path';
import { DiskStore } from '../../src/ipam/disk-store.js';
import { IpamError } from '../../src/ipam/types.js';
import { parseConfig } from '../../src/cni/config.js';
import { CniError } from '../../src/cni/errors.js';
import { parseEnv } from '../../src/cni/env.js';
import { hostVethName } from '../../src/cni/names.js';

const RUNS = 10_000;
const ROOT = '/var/lib/pw-test-ipam';

/** Strings heavy in the characters that make paths: ".", "/", "\\", NUL, letters; and known-bad ones. */
const pathy = fc.oneof(
  fc.constantFrom('..', '.', '/', '../x', 'a/../../b', '/etc/passwd', 'a\0b', 'x/', './x', '..\\x', '', ' ', 'a'.repeat(300), 'ok-name', 'net.1'),
  fc.stringMatching(/^[a-z./\\\0-]{0,12}$/),
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 20 }),
);

const isDirectChild = (dir: string, p: string) => path.dirname(p) === dir && !['.', '..', ''].includes(path.basename(p));

t.test('network names: a store directory is a direct child of dataDir, or the name is refused', async (t) => {
  fc.assert(fc.property(pathy, (name) => {
    let store: DiskStore;
    try {
      store = new DiskStore(ROOT, name);
    } catch (err) {
      return err instanceof IpamError && err.kind === 'invalid' && /network name/.test(err.message);
    }
    return isDirectChild(ROOT, store.dir) && path.basename(store.dir) === name;
  }), { numRuns: RUNS });
  t.pass(`${RUNS} names`);
});

t.test('CNI configs: network name and delegated IPAM type are refused unless they are one plain component', async (t) => {
  const conf = (name: string, ipamType: string) => JSON.stringify({ cniVersion: '1.1.0', name, type: 'podwire', ipam: { type: ipamType } });
  fc.assert(fc.property(pathy, pathy, (name, ipamType) => {
    let parsed;
    try {
      parsed = parseConfig(conf(name, ipamType));
    } catch (err) {
      return err instanceof CniError;
    }
    // Accepted: both are single path components, so CNI_PATH/<type> and dataDir/<name> stay inside.
    return isDirectChild('/opt/cni/bin', path.join('/opt/cni/bin', parsed.ipam.type)) && isDirectChild(ROOT, path.join(ROOT, parsed.name));
  }), { numRuns: RUNS });
  t.pass(`${RUNS} configs`);
});

t.test('container IDs and ifnames: refused, or the host veth (and its journal file) is a fixed-form name', async (t) => {
  fc.assert(fc.property(pathy, pathy, (containerId, ifname) => {
    let env;
    try {
      env = parseEnv({ CNI_COMMAND: 'DEL', CNI_CONTAINERID: containerId, CNI_IFNAME: ifname, CNI_PATH: '/opt/cni/bin' });
    } catch (err) {
      return err instanceof CniError && err.code === 4;
    }
    const name = hostVethName(env.containerId, env.ifname);
    return /^pw[0-9a-f]{12}$/.test(name) && isDirectChild('/run/podwire/cni-del', path.join('/run/podwire/cni-del', `${name}.json`));
  }), { numRuns: RUNS });
  t.pass(`${RUNS} pairs`);
});

t.test('the properties can fail: a path join of raw input escapes', async (t) => {
  // What the checks above guard against: joining an unchecked name leaves the directory.
  t.notOk(isDirectChild(ROOT, path.join(ROOT, '../etc')), 'a raw "../etc" is not a direct child');
  t.notOk(isDirectChild(ROOT, path.join(ROOT, 'a/b')), 'a raw "a/b" is not a direct child');
  t.notOk(isDirectChild(ROOT, path.join(ROOT, '..')), 'a raw ".." is not a direct child');
  t.throws(() => new DiskStore(ROOT, '../etc'), /network name/, 'and the store refuses it');
});
