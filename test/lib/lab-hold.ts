// Test helper process: builds a lab with the given prefix, prints "ready", then waits to be
// signalled, so tests can check teardown on SIGINT/SIGTERM and leftovers after SIGKILL.
import { Lab } from '../../src/lab/lab.js';

const prefix = process.argv[2];
const nodes = Number(process.argv[3] ?? '2');
const lab = Lab.create({ nodes, prefix });
const sleeper = lab.spawn(lab.nodes[0].netns, 'sleep', ['300'], { stdio: 'ignore' });
process.stdout.write(`ready ${lab.prefix} ${sleeper.pid}\n`);
setInterval(() => {}, 1000);
