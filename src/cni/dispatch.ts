// The CNI commands, dispatched from one request (the CNI_* variables and the config): the plugin
// binary (main.ts) runs it for its own process, the agent (src/agent/cni-server.ts) for requests
// its native client passes over the local socket. Both give the same stdout and exit status.
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

/** What the node agent does its own way (src/agent/cni-server.ts); the plugin passes none. */
export interface CniHooks {
  /**
   * DEL's local cleanup: returns once the pod is cut off (the runtime may be answered), and finishes
   * the rest (veth deletion, masquerade entry, IP) itself (src/agent/cni-del.ts). Throws when
   * nothing could be done: the DEL fails and the runtime retries it.
   */
  del?: (env: CniEnv, conf: NetConf) => void;
}

export async function runCommand(env: CniEnv, stdin: string, hooks: CniHooks = {}): Promise<unknown> {
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
      if (hooks.del) hooks.del(env, conf);
      else (await import('./del.js')).cmdDel(env, conf);
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
export function errorVersion(stdin: string): string {
  try {
    const v = (JSON.parse(stdin) as { cniVersion?: unknown }).cniVersion;
    return typeof v === 'string' && /^\d+\.\d+\.\d+$/.test(v) ? v : CNI_SPEC_VERSION;
  } catch {
    return CNI_SPEC_VERSION;
  }
}

/** What a plugin run prints and its exit status. */
export interface CniOutcome {
  code: 0 | 1;
  /** The result or the CNI error as one JSON line; empty for a DEL/CHECK/GC/STATUS that succeeded. */
  stdout: string;
}

/**
 * One plugin run from its environment (only the CNI_* variables are read) and its stdin. Never
 * throws: every failure is a CNI error in the config's cniVersion.
 */
export async function executeCni(vars: Readonly<Record<string, string | undefined>>, stdin: string, hooks?: CniHooks): Promise<CniOutcome> {
  try {
    const out = await runCommand(parseEnv(vars), stdin, hooks);
    return { code: 0, stdout: out === undefined ? '' : JSON.stringify(out) + '\n' };
  } catch (err) {
    const e = asCniError(err, CNI_ERR.KERNEL);
    return { code: 1, stdout: JSON.stringify(e.toJSON(errorVersion(stdin))) + '\n' };
  }
}
