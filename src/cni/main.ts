#!/usr/bin/env node
// The CNI plugin binary (installed as /opt/cni/bin/podwire): reads CNI_* and the config on stdin,
// dispatches, prints the result or a CNI error as JSON on stdout. Nothing is touched before all
// input has been validated.
import fs from 'node:fs';
import type { NetConf } from './config.js';
import { parseEnv, type CniEnv } from './env.js';
import { asCniError, CniError, CNI_ERR } from './errors.js';
import { CNI_SPEC_VERSION, versionResult } from './version.js';
// The command modules are imported per command. Unbundled, that keeps koffi and the netlink library
// out of VERSION; in the esbuild bundle (dist/bin/podwire-cni.mjs) their code is only initialised
// on use, but koffi, an external import, is loaded at start for every command.

/** Operations a config version allows (CHECK since 0.4.0, GC and STATUS since 1.1.0). */
function requireVersion(conf: NetConf, command: string, min: string): void {
  const [a, b, c] = conf.cniVersion.split('.').map(Number);
  const [x, y, z] = min.split('.').map(Number);
  if (a < x || (a === x && (b < y || (b === y && c < z)))) {
    throw new CniError(CNI_ERR.INCOMPATIBLE_VERSION, `config version ${conf.cniVersion} does not allow ${command}`, `${command} needs cniVersion ${min} or later`);
  }
}

const STDIN_LIMIT = 16 << 20;
const STDIN_TIMEOUT_MS = 30_000;

/**
 * All of stdin until EOF. Node may hand us a non-blocking pipe (EAGAIN before the runtime has
 * written): wait and retry rather than take an empty read for the whole config.
 */
function readStdin(): string {
  const chunks: Buffer[] = [];
  const buf = Buffer.alloc(64 << 10);
  const nap = new Int32Array(new SharedArrayBuffer(4));
  const deadline = Date.now() + STDIN_TIMEOUT_MS;
  let total = 0;
  for (;;) {
    let n: number;
    try {
      n = fs.readSync(0, buf, 0, buf.length, null);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EAGAIN' && Date.now() < deadline) {
        Atomics.wait(nap, 0, 0, 2);
        continue;
      }
      if (code === 'EOF') break;
      throw new CniError(CNI_ERR.IO, `cannot read the network config from stdin: ${code}`, 'the runtime must write the config to stdin and close it');
    }
    if (n === 0) break;
    total += n;
    if (total > STDIN_LIMIT) throw new CniError(CNI_ERR.DECODE, `the network config on stdin is larger than ${STDIN_LIMIT} bytes`);
    chunks.push(Buffer.from(buf.subarray(0, n)));
  }
  return Buffer.concat(chunks).toString('utf8');
}

async function run(env: CniEnv, stdin: string): Promise<unknown> {
  if (env.command === 'VERSION') return versionResult();
  const { parseConfig } = await import('./config.js');
  const conf = parseConfig(stdin, { cniArgs: env.args });
  switch (env.command) {
    case 'ADD': {
      const [{ cmdAdd }, { formatResult }] = await Promise.all([import('./add.js'), import('./result.js')]);
      // Labels, names and the credentials' files are checked before the node is touched.
      let credentials: import('./register.js').Credentials;
      if (conf.controlPlane) {
        const register = await import('./register.js');
        register.podIdentity(env);
        credentials = register.readCredentials(conf.controlPlane);
      }
      const result = cmdAdd(env, conf);
      if (conf.controlPlane) await registerOrUndo(env, conf, result, credentials);
      return formatResult(result, conf.cniVersion);
    }
    case 'DEL':
      (await import('./del.js')).cmdDel(env, conf);
      // After the local cleanup: a control plane that is down makes DEL fail (the runtime retries;
      // DEL is idempotent), but never leaves the node half cleaned.
      if (conf.controlPlane) await (await import('./register.js')).unregisterPod(conf.controlPlane, env);
      return undefined;
    case 'CHECK':
      requireVersion(conf, 'CHECK', '0.4.0');
      (await import('./check.js')).cmdCheck(env, conf);
      return undefined;
    case 'GC':
      requireVersion(conf, 'GC', '1.1.0');
      (await import('./gc.js')).cmdGc(env, conf);
      return undefined;
    case 'STATUS':
      requireVersion(conf, 'STATUS', '1.1.0');
      (await import('./status.js')).cmdStatus(env, conf);
      return undefined;
  }
}

/** A pod the control plane does not know is unreachable through Services: undo the ADD instead. */
async function registerOrUndo(env: CniEnv, conf: NetConf, result: import('./result.js').Result, credentials: import('./register.js').Credentials): Promise<void> {
  try {
    await (await import('./register.js')).registerPod(conf.controlPlane!, env, result, credentials);
  } catch (err) {
    try {
      (await import('./del.js')).cmdDel(env, conf);
    } catch (undoErr) {
      const e = asCniError(err);
      throw new CniError(e.code, e.message, `${e.details}; undoing the ADD also failed (run DEL): ${(undoErr as Error).message}`);
    }
    throw err;
  }
}

/** The cniVersion to put in an error: the config's when it has a readable one. */
function errorVersion(stdin: string): string {
  try {
    const v = (JSON.parse(stdin) as { cniVersion?: unknown }).cniVersion;
    return typeof v === 'string' && /^\d+\.\d+\.\d+$/.test(v) ? v : CNI_SPEC_VERSION;
  } catch {
    return CNI_SPEC_VERSION;
  }
}

async function main(): Promise<number> {
  let stdin = '';
  try {
    // stdin first: even an error about the environment answers in the config's cniVersion.
    if (!process.stdin.isTTY) stdin = readStdin();
    const env = parseEnv(process.env);
    const out = await run(env, stdin);
    if (out !== undefined) process.stdout.write(JSON.stringify(out) + '\n');
    return 0;
  } catch (err) {
    const e = asCniError(err, CNI_ERR.KERNEL);
    process.stdout.write(JSON.stringify(e.toJSON(errorVersion(stdin))) + '\n');
    return 1;
  }
}

process.exitCode = await main();
