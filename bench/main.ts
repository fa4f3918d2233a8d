// Benchmarks against the reference tools: `npm run bench -- NAME [flags]`. main only dispatches;
// each benchmark is a module with its summary, its flags and run(). Later: overlay, services.
import { parseArgs, UsageError, type FlagSpecs, type Flags } from '../src/flags/flags.js';
import * as netlink from './netlink.js';

interface Benchmark {
  summary: string;
  flags: FlagSpecs;
  /** Checks the parser cannot express; throws RangeError/UsageError for a bad flag. */
  check?(flags: Flags): void;
  run(flags: Flags): Promise<void>;
}

const BENCHMARKS: Record<string, Benchmark> = { netlink };
BENCHMARKS.cni = await import('./cni.js');
BENCHMARKS.controlplane = await import('./controlplane.js');
BENCHMARKS.overlay = await import('./overlay.js');
BENCHMARKS.services = await import('./services.js');
BENCHMARKS.render = await import('./render.js');
BENCHMARKS.dns = await import('./dns.js');
BENCHMARKS.ipvs = await import('./ipvs.js');
BENCHMARKS.offload = await import('./offload.js');

function usage(): string {
  const lines = ['usage: npm run bench -- NAME [flags]   (or: node dist/bench/main.js NAME [flags])', '', 'benchmarks:'];
  for (const [name, b] of Object.entries(BENCHMARKS)) {
    lines.push(`  ${name.padEnd(12)} ${b.summary}`);
    for (const [flag, spec] of Object.entries(b.flags)) {
      const value = spec.type === 'bool' ? '' : spec.type === 'int' ? ' N' : ' VALUE';
      const range = spec.min !== undefined || spec.max !== undefined ? ` [${spec.min ?? ''}..${spec.max ?? ''}]` : '';
      lines.push(`      --${(flag + value).padEnd(16)} ${spec.help}${range}`);
    }
  }
  return lines.join('\n') + '\n';
}

function fail(message: string): never {
  process.stderr.write(`bench: ${message}\n\n${usage()}`);
  process.exit(2);
}

async function main(argv: string[]): Promise<void> {
  const [name, ...rest] = argv;
  if (name === undefined || ['help', '--help', '-h'].includes(name)) {
    if (name === undefined) fail('which benchmark?');
    process.stdout.write(usage());
    return;
  }
  const bench = Object.hasOwn(BENCHMARKS, name) ? BENCHMARKS[name] : undefined;
  if (!bench) fail(`unknown benchmark ${JSON.stringify(name)} (known: ${Object.keys(BENCHMARKS).join(', ')})`);
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(usage());
    return;
  }
  let flags: Flags;
  try {
    const parsed = parseArgs(rest, bench.flags);
    if (parsed.positional.length) throw new UsageError(`unexpected argument ${JSON.stringify(parsed.positional[0])}`);
    flags = parsed.flags;
    bench.check?.(flags);
  } catch (err) {
    if (err instanceof UsageError || err instanceof RangeError) fail(err.message);
    throw err;
  }
  try {
    await bench.run(flags);
  } catch (err) {
    process.stderr.write(`bench ${name}: error: ${(err as Error).message}\n`);
    process.exitCode = 1;
  }
}

await main(process.argv.slice(2));
