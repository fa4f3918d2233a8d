#!/usr/bin/env node
// The CNI plugin binary (installed as /opt/cni/bin/podwire): reads CNI_* and the config on stdin,
// dispatches (dispatch.ts), prints the result or a CNI error as JSON on stdout. Nothing is touched
// before all input has been validated.
import fs from 'node:fs';
import { CniError, CNI_ERR, asCniError } from './errors.js';
import { errorVersion, executeCni } from './dispatch.js';

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

async function main(): Promise<number> {
  let stdin = '';
  try {
    // stdin first: even an error about the environment answers in the config's cniVersion.
    if (!process.stdin.isTTY) stdin = readStdin();
  } catch (err) {
    process.stdout.write(JSON.stringify(asCniError(err, CNI_ERR.IO).toJSON(errorVersion(stdin))) + '\n');
    return 1;
  }
  const out = await executeCni(process.env, stdin);
  process.stdout.write(out.stdout);
  return out.code;
}

process.exitCode = await main();
