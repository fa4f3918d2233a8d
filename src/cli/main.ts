#!/usr/bin/env node
// `podwire`: the command-line interface.
import { labCommand, LAB_USAGE } from './lab.js';
import { UsageError } from './args.js';
import { VERSION } from '../version.js';

const USAGE = `podwire ${VERSION}: a Kubernetes-style pod network for Linux nodes

usage: podwire <command> [args]

commands:
  lab       build / remove a multi-node netns lab cluster on this machine
  version   print the version

${LAB_USAGE}`;

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'lab':
      return labCommand(rest);
    case 'version':
    case '--version':
      console.log(VERSION);
      return 0;
    case 'help':
    case '--help':
    case '-h':
      console.log(USAGE);
      return 0;
    default:
      throw new UsageError(cmd ? `unknown command ${JSON.stringify(cmd)}; see podwire help` : USAGE);
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`podwire: ${err.message}\n`);
    process.exit(err instanceof UsageError ? 2 : 1);
  },
);
