#!/usr/bin/env node
// The CNI plugin binary (installed as /opt/cni/bin/podwire). This build answers VERSION; the
// network operations (ADD/DEL/CHECK/GC/STATUS) are not built yet and fail with a CNI error that
// says so, never with a fake success.
import { versionResult } from './version.js';

const command = process.env.CNI_COMMAND ?? '';

function fail(code: number, msg: string, details = ''): never {
  process.stdout.write(JSON.stringify({ cniVersion: versionResult().cniVersion, code, msg, details }) + '\n');
  process.exit(1);
}

switch (command) {
  case 'VERSION':
    process.stdout.write(JSON.stringify(versionResult()) + '\n');
    break;
  case 'ADD':
  case 'DEL':
  case 'CHECK':
  case 'GC':
  case 'STATUS':
    fail(100, `podwire: CNI ${command} is not implemented in this build`, 'this podwire version only answers VERSION');
    break;
  default:
    fail(4, `podwire: invalid CNI_COMMAND ${JSON.stringify(command)}`, 'expected ADD, DEL, CHECK, VERSION, GC or STATUS');
}
