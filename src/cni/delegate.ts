// Running another plugin (a delegated IPAM plugin such as the reference host-local) as the spec says
// a runtime would: same CNI_* environment, the network config on stdin, result or error on stdout.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { CniError, CNI_ERR } from './errors.js';
import type { CniEnv } from './env.js';

const DELEGATE_TIMEOUT_MS = 30_000;

export function findPlugin(type: string, cniPath: string[]): string {
  for (const dir of cniPath) {
    const file = path.join(dir, type);
    try {
      fs.accessSync(file, fs.constants.X_OK);
      if (fs.statSync(file).isFile()) return file;
    } catch {
      // not in this directory
    }
  }
  throw new CniError(CNI_ERR.INVALID_CONFIG, `IPAM plugin ${JSON.stringify(type)} not found in CNI_PATH`,
    `looked in: ${cniPath.join(', ') || '(CNI_PATH is empty)'}; install it there or use "ipam": {"type": "podwire"}`);
}

/** Run the plugin; its JSON result (or undefined for empty output) or a CniError with its code. */
export function execPlugin(type: string, env: CniEnv, command: string, config: Record<string, unknown>): unknown {
  const bin = findPlugin(type, env.path);
  const r = spawnSync(bin, [], {
    input: JSON.stringify(config),
    encoding: 'utf8',
    timeout: DELEGATE_TIMEOUT_MS,
    env: {
      PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin',
      CNI_COMMAND: command,
      CNI_CONTAINERID: env.containerId,
      CNI_NETNS: env.netns,
      CNI_IFNAME: env.ifname,
      CNI_ARGS: [...env.args].map(([k, v]) => `${k}=${v}`).join(';'),
      CNI_PATH: env.path.join(':'),
    },
  });
  if (r.error) throw new CniError(CNI_ERR.IPAM_DELEGATE, `IPAM plugin ${type} ${command} could not run: ${r.error.message}`, bin);
  let out: unknown;
  const text = r.stdout.trim();
  if (text) {
    try {
      out = JSON.parse(text);
    } catch {
      throw new CniError(CNI_ERR.IPAM_DELEGATE, `IPAM plugin ${type} ${command} printed something that is not JSON`, text.slice(0, 300));
    }
  }
  if (r.status !== 0) {
    const e = (out ?? {}) as { code?: number; msg?: string; details?: string };
    throw new CniError(typeof e.code === 'number' ? e.code : CNI_ERR.IPAM_DELEGATE,
      `IPAM plugin ${type} ${command} failed: ${e.msg ?? (r.stderr.trim() || `exit status ${r.status}`)}`, e.details ?? '');
  }
  return out;
}
