// Where the CLI finds its API server and credentials. Each setting is taken from the first source
// that has it, field by field (as kubectl merges kubeconfig with flags):
//   1. flags        --server URL, --token T | --token-file F, --ca-file F
//   2. environment  PODWIRE_SERVER, PODWIRE_TOKEN, PODWIRE_CA_FILE
//   3. config file  --config F, else $PODWIRE_CONFIG, else $HOME/.config/podwire/config.json:
//                   { "server": "...", "token": "..." | "tokenFile": "...", "caFile": "..." }
// Every problem names the source it came from, so a stale env var or file is easy to find.
import fs from 'node:fs';
import path from 'node:path';
import type { ClientOptions } from '../client/api-client.js';
import { UsageError, type FlagSpecs } from '../flags/flags.js';

export const CONNECTION_FLAGS: FlagSpecs = {
  server: { type: 'string', help: 'API server URL, e.g. http://127.0.0.1:6443 (env PODWIRE_SERVER)' },
  token: { type: 'string', help: 'bearer token (env PODWIRE_TOKEN)' },
  'token-file': { type: 'string', help: 'read the bearer token from this file' },
  'ca-file': { type: 'string', help: 'PEM CA bundle for an https server (env PODWIRE_CA_FILE)' },
  config: { type: 'string', help: 'config file (env PODWIRE_CONFIG; default ~/.config/podwire/config.json)' },
};

export interface ConnectionFlags {
  server?: string;
  token?: string;
  'token-file'?: string;
  'ca-file'?: string;
  config?: string;
}

export interface ResolveInput {
  flags: ConnectionFlags;
  /** Passed in (not read from process.env) so tests never depend on the caller's environment. */
  env: Record<string, string | undefined>;
  home: string | undefined;
}

/** ClientOptions plus where the server came from (for messages such as "cannot reach ... (from PODWIRE_SERVER)"). */
export interface ResolvedClient extends ClientOptions {
  serverSource: string;
}

interface Found {
  server?: string;
  token?: string;
  ca?: Buffer;
}

interface ConfigFile {
  path: string;
  /** The default path: a missing file there just means "not configured". */
  optional: boolean;
}

const CONFIG_KEYS = ['server', 'token', 'tokenFile', 'caFile'];

/** "ENOENT: no such file or directory, open '/x'" → "ENOENT: no such file or directory" (the caller names the file). */
function fsProblem(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  return err.code ? err.message.replace(/, \w+ '.*'$/, '') : String(err.message ?? e);
}

function readSecret(file: string, what: string): string {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`${what} ${file}: ${fsProblem(e)}`);
  }
  const token = text.trim();
  if (token === '') throw new Error(`${what} ${file}: the file is empty`);
  return token;
}

function readCa(file: string, what: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (e) {
    throw new Error(`${what} ${file}: ${fsProblem(e)}`);
  }
}

function checkServer(server: string, source: string): string {
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    throw new Error(`${source}: ${JSON.stringify(server)} is not a URL; expected e.g. http://127.0.0.1:6443`);
  }
  // "localhost:6443" parses as a URL with scheme "localhost:", so this also catches a forgotten scheme.
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`${source}: ${JSON.stringify(server)}: only http:// and https:// URLs are supported, e.g. http://127.0.0.1:6443`);
  return server;
}

function fromFlags(flags: ConnectionFlags): Found {
  if (flags.token !== undefined && flags['token-file'] !== undefined) throw new UsageError('--token and --token-file are mutually exclusive');
  return {
    server: flags.server !== undefined ? checkServer(flags.server, '--server') : undefined,
    token: flags.token ?? (flags['token-file'] !== undefined ? readSecret(flags['token-file'], '--token-file') : undefined),
    ca: flags['ca-file'] !== undefined ? readCa(flags['ca-file'], '--ca-file') : undefined,
  };
}

function fromEnv(env: ResolveInput['env']): Found {
  const set = (name: string) => (env[name] !== undefined && env[name] !== '' ? env[name] : undefined);
  const server = set('PODWIRE_SERVER');
  const caFile = set('PODWIRE_CA_FILE');
  return {
    server: server !== undefined ? checkServer(server, 'PODWIRE_SERVER') : undefined,
    token: set('PODWIRE_TOKEN'),
    ca: caFile !== undefined ? readCa(caFile, 'PODWIRE_CA_FILE') : undefined,
  };
}

export function configFilePath(input: ResolveInput): ConfigFile | undefined {
  if (input.flags.config !== undefined) return { path: input.flags.config, optional: false };
  const env = input.env.PODWIRE_CONFIG;
  if (env !== undefined && env !== '') return { path: env, optional: false };
  return input.home ? { path: path.join(input.home, '.config', 'podwire', 'config.json'), optional: true } : undefined;
}

function parseConfigFile(file: ConfigFile): Record<string, unknown> | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file.path, 'utf8');
  } catch (e) {
    if (file.optional && (e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Error(`config file ${file.path}: ${fsProblem(e)}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new Error(`config file ${file.path}: not valid JSON: ${(e as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error(`config file ${file.path}: must be a JSON object like {"server": "http://127.0.0.1:6443", "token": "..."}`);
  const obj = parsed as Record<string, unknown>;
  // A misspelt key ("sever") would otherwise be ignored and the error would blame a missing setting.
  for (const key of Object.keys(obj)) if (!CONFIG_KEYS.includes(key)) throw new Error(`config file ${file.path}: unknown key ${JSON.stringify(key)} (known: ${CONFIG_KEYS.join(', ')})`);
  for (const key of CONFIG_KEYS) {
    if (obj[key] !== undefined && (typeof obj[key] !== 'string' || obj[key] === '')) throw new Error(`config file ${file.path}: ${key} must be a non-empty string`);
  }
  if (obj.token !== undefined && obj.tokenFile !== undefined) throw new Error(`config file ${file.path}: set token or tokenFile, not both`);
  return obj;
}

function fromFile(file: ConfigFile): Found {
  const obj = parseConfigFile(file);
  if (!obj) return {};
  const where = `config file ${file.path}:`;
  // Relative paths in the file are relative to the file, so a config directory can be moved whole.
  const near = (p: string) => path.resolve(path.dirname(file.path), p);
  return {
    server: obj.server !== undefined ? checkServer(obj.server as string, `${where} server`) : undefined,
    token: (obj.token as string | undefined) ?? (obj.tokenFile !== undefined ? readSecret(near(obj.tokenFile as string), `${where} tokenFile`) : undefined),
    ca: obj.caFile !== undefined ? readCa(near(obj.caFile as string), `${where} caFile`) : undefined,
  };
}

export const NO_SERVER_HELP = `no API server configured; either
  - pass --server URL (and --token T or --token-file F), or
  - set PODWIRE_SERVER (and PODWIRE_TOKEN), or
  - write {"server": "http://HOST:6443", "token": "..."} to ~/.config/podwire/config.json (or the file named by --config / $PODWIRE_CONFIG)`;

/**
 * Server, token and CA, each from the first source that sets it. The config file is read only
 * when flags and environment leave something unset, so a broken default file does not get in the
 * way of a fully specified command line.
 */
export function resolveClientConfig(input: ResolveInput): ResolvedClient {
  const flags = fromFlags(input.flags);
  const env = fromEnv(input.env);
  const complete = (flags.server ?? env.server) !== undefined && (flags.token ?? env.token) !== undefined && (flags.ca ?? env.ca) !== undefined;
  const file = configFilePath(input);
  // An explicitly named config file is always read, so a mistake in it is never silently skipped.
  const fromConfig = file && (!complete || !file.optional) ? fromFile(file) : {};
  const server = flags.server ?? env.server ?? fromConfig.server;
  if (server === undefined) throw new UsageError(NO_SERVER_HELP);
  const serverSource = flags.server !== undefined ? '--server' : env.server !== undefined ? 'PODWIRE_SERVER' : `config file ${file!.path}`;
  const token = flags.token ?? env.token ?? fromConfig.token;
  const ca = flags.ca ?? env.ca ?? fromConfig.ca;
  return { server, serverSource, ...(token !== undefined ? { token } : {}), ...(ca !== undefined ? { ca } : {}) };
}
