// Where the CLI finds its server and token: flags > environment > config file, field by field,
// with errors that name their source. Environment and home are passed in, never the real ones.
import t, { type Test } from 'tap';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { UsageError } from '../../src/flags/flags.js';
import { resolveClientConfig, type ResolveInput } from '../../src/cli/client-config.js';

function tempHome(t: Test): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pw-clientcfg-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function writeConfig(home: string, content: unknown, rel = '.config/podwire/config.json'): string {
  const file = path.join(home, rel);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

const resolve = (input: Partial<ResolveInput>) => resolveClientConfig({ flags: {}, env: {}, home: undefined, ...input });

t.test('precedence per field: flags, then environment, then the config file', async (t) => {
  const home = tempHome(t);
  const file = writeConfig(home, { server: 'http://file:1', token: 'file-token' });
  t.match(resolve({ home }), { server: 'http://file:1', token: 'file-token', serverSource: `config file ${file}` });
  t.match(resolve({ home, env: { PODWIRE_SERVER: 'http://env:2' } }), { server: 'http://env:2', token: 'file-token', serverSource: 'PODWIRE_SERVER' }, 'env server, file token');
  t.match(resolve({ home, env: { PODWIRE_SERVER: 'http://env:2', PODWIRE_TOKEN: 'env-token' } }), { server: 'http://env:2', token: 'env-token' });
  t.match(resolve({ home, env: { PODWIRE_SERVER: 'http://env:2', PODWIRE_TOKEN: 'env-token' }, flags: { server: 'https://flag:3', token: 'flag-token' } }), { server: 'https://flag:3', token: 'flag-token', serverSource: '--server' });
  t.match(resolve({ home, env: { PODWIRE_SERVER: '', PODWIRE_TOKEN: '' } }), { server: 'http://file:1', token: 'file-token' }, 'empty variables count as unset');
  const noToken = resolve({ flags: { server: 'http://flag:3' } });
  t.equal(noToken.token, undefined, 'a token is optional (the server says Unauthorized)');
});

t.test('config file location: --config, then $PODWIRE_CONFIG, then ~/.config/podwire/config.json', async (t) => {
  const home = tempHome(t);
  writeConfig(home, { server: 'http://default:1' });
  const viaEnv = writeConfig(home, { server: 'http://envfile:2' }, 'env.json');
  const viaFlag = writeConfig(home, { server: 'http://flagfile:3' }, 'flag.json');
  t.equal(resolve({ home }).server, 'http://default:1');
  t.equal(resolve({ home, env: { PODWIRE_CONFIG: viaEnv } }).server, 'http://envfile:2');
  t.equal(resolve({ home, env: { PODWIRE_CONFIG: viaEnv }, flags: { config: viaFlag } }).server, 'http://flagfile:3');
  t.throws(() => resolve({ home, env: { PODWIRE_CONFIG: path.join(home, 'gone.json') } }), /config file .*gone\.json: ENOENT: no such file or directory$/, 'a named file must exist');
  t.throws(() => resolve({ home, flags: { config: path.join(home, 'gone.json'), server: 'http://x:1' } }), /gone\.json: ENOENT/, 'an explicitly named file is read even when flags say everything');
});

t.test('token files: --token-file, tokenFile relative to the config file, trimmed, empty refused', async (t) => {
  const home = tempHome(t);
  fs.writeFileSync(path.join(home, 'admin.token'), 'pwa_secret\n');
  fs.writeFileSync(path.join(home, 'empty.token'), '\n');
  t.equal(resolve({ flags: { server: 'http://x:1', 'token-file': path.join(home, 'admin.token') } }).token, 'pwa_secret');
  t.throws(() => resolve({ flags: { server: 'http://x:1', 'token-file': path.join(home, 'empty.token') } }), /--token-file .*empty\.token: the file is empty/);
  t.throws(() => resolve({ flags: { server: 'http://x:1', 'token-file': path.join(home, 'nope') } }), /^--token-file .*nope: ENOENT/);
  t.throws(() => resolve({ flags: { server: 'http://x:1', token: 'a', 'token-file': 'b' } }), UsageError);
  fs.mkdirSync(path.join(home, 'cfg'));
  fs.writeFileSync(path.join(home, 'cfg', 'tok'), 'pwa_from_dir');
  const cfg = writeConfig(home, { server: 'http://file:1', tokenFile: 'tok' }, 'cfg/config.json');
  t.equal(resolve({ flags: { config: cfg } }).token, 'pwa_from_dir', 'relative to the config file, not the working directory');
  const broken = writeConfig(home, { server: 'http://file:1', tokenFile: '/y/missing' }, 'broken.json');
  t.throws(() => resolve({ flags: { config: broken } }), new RegExp(`^config file ${broken}: tokenFile /y/missing: ENOENT`));
});

t.test('no server anywhere: a usage error that explains the three ways', async (t) => {
  const home = tempHome(t);
  const err = t.throws(() => resolve({ home, env: { PODWIRE_TOKEN: 'x' } })) as Error;
  t.ok(err instanceof UsageError, 'exit code 2');
  t.match(err.message, /--server URL/);
  t.match(err.message, /PODWIRE_SERVER/);
  t.match(err.message, /config\.json/);
  writeConfig(home, { token: 'only-a-token' });
  t.throws(() => resolve({ home }), UsageError, 'a config file without a server');
  t.throws(() => resolve({}), UsageError, 'no home at all');
});

t.test('bad values name their source', async (t) => {
  const home = tempHome(t);
  const file = (content: unknown) => writeConfig(home, content, `c${Math.random()}.json`);
  const bad: Array<[Partial<ResolveInput>, RegExp]> = [
    [{ flags: { server: 'localhost:6443' } }, /^--server: "localhost:6443": only http:\/\/ and https:\/\/ URLs are supported, e.g. http:\/\/127/],
    [{ flags: { server: 'http//x' } }, /^--server: "http\/\/x" is not a URL/],
    [{ env: { PODWIRE_SERVER: 'ftp://x' } }, /^PODWIRE_SERVER: "ftp:\/\/x": only http:\/\/ and https:\/\//],
    [{ flags: { config: file('{ nope') } }, /^config file .*: not valid JSON/],
    [{ flags: { config: file('[1]') } }, /^config file .*: must be a JSON object/],
    [{ flags: { config: file({ sever: 'http://x:1' }) } }, /^config file .*: unknown key "sever"/],
    [{ flags: { config: file({ server: 6443 }) } }, /^config file .*: server must be a non-empty string/],
    [{ flags: { config: file({ server: 'http://x:1', token: 'a', tokenFile: 'b' }) } }, /set token or tokenFile, not both/],
    [{ flags: { config: file({ server: 'nope' }) } }, /^config file .*: server: "nope" is not a URL/],
    [{ flags: { server: 'https://x:1', 'ca-file': path.join(home, 'ca.pem') } }, /^--ca-file .*ca\.pem: ENOENT/],
    [{ flags: { server: 'https://x:1' }, env: { PODWIRE_CA_FILE: path.join(home, 'ca.pem') } }, /^PODWIRE_CA_FILE .*ca\.pem: ENOENT/],
  ];
  for (const [input, re] of bad) t.throws(() => resolve(input), re, JSON.stringify(input));
  const broken = writeConfig(home, '{ broken');
  t.equal(resolve({ home, flags: { server: 'http://x:1', token: 't', 'ca-file': broken } }).server, 'http://x:1', 'a broken default file is not read when flags set everything');
});

t.test('caFile is read as the CA bundle', async (t) => {
  const home = tempHome(t);
  fs.writeFileSync(path.join(home, 'ca.pem'), '-----BEGIN CERTIFICATE-----\n');
  const cfg = writeConfig(home, { server: 'https://cp:6443', token: 't', caFile: 'ca.pem' }, 'config.json');
  t.equal(resolve({ flags: { config: cfg } }).ca?.toString(), '-----BEGIN CERTIFICATE-----\n');
});
