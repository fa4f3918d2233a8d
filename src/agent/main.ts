#!/usr/bin/env node
// podwire-agent entry point. This build has no agent yet: it says so and exits non-zero.
import { VERSION } from '../version.js';

const arg = process.argv[2];
if (arg === '--version' || arg === 'version') {
  console.log(VERSION);
  process.exit(0);
}
process.stderr.write('podwire-agent ' + VERSION + ': the agent is not part of this build yet\n');
process.exit(1);
