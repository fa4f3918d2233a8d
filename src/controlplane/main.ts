#!/usr/bin/env node
// podwire-controlplane entry point. This build has no controlplane yet: it says so and exits non-zero.
import { VERSION } from '../version.js';

const arg = process.argv[2];
if (arg === '--version' || arg === 'version') {
  console.log(VERSION);
  process.exit(0);
}
process.stderr.write('podwire-controlplane ' + VERSION + ': the controlplane is not part of this build yet\n');
process.exit(1);
