// Command-line flags for every podwire command (the CLI, the daemons, the benchmarks): node:util
// parseArgs does the tokenizing (long and short forms, `--flag=value`, `-ojson`, `--`), and this
// small typed layer on top declares each flag's type and checks its value: strings, integers with a
// range, booleans, and enums with their choices. Unknown flags, missing values, bad numbers and
// values outside an enum are UsageErrors that name the flag. It sits below every command, so the
// daemons do not import the CLI for it.
import { parseArgs as tokenize } from 'node:util';

export type FlagType = 'string' | 'int' | 'bool' | 'enum';
export interface FlagSpec {
  type: FlagType;
  default?: string | number | boolean;
  help: string;
  /** int: the accepted range, inclusive. */
  min?: number;
  max?: number;
  /** enum: the accepted values. */
  choices?: readonly string[];
  /** One-letter short form, kubectl style: `-o json`, `-o=json`, `-ojson`, `-A`. */
  alias?: string;
}
export type FlagSpecs = Record<string, FlagSpec>;
export type Flags = Record<string, string | number | boolean | undefined>;

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

function convert(name: string, spec: FlagSpec, raw: string): string | number {
  if (spec.type === 'enum') {
    const choices = spec.choices ?? [];
    if (!choices.includes(raw)) throw new UsageError(`--${name} ${JSON.stringify(raw)}: expected ${choices.join(', ')}`);
    return raw;
  }
  if (spec.type === 'string') return raw;
  if (!/^-?\d+$/.test(raw)) throw new UsageError(`--${name} expects an integer, got ${JSON.stringify(raw)}`);
  const n = Number(raw);
  if ((spec.min !== undefined && n < spec.min) || (spec.max !== undefined && n > spec.max)) {
    throw new UsageError(`--${name} must be in ${spec.min ?? '-∞'}..${spec.max ?? '∞'}, got ${n}`);
  }
  return n;
}

function unknownFlag(rawName: string, specs: FlagSpecs): UsageError {
  if (rawName.startsWith('--')) return new UsageError(`unknown flag ${rawName} (known: ${Object.keys(specs).map((k) => '--' + k).join(', ') || 'none'})`);
  const known = Object.values(specs).flatMap((s) => (s.alias ? ['-' + s.alias] : []));
  return new UsageError(`unknown flag ${rawName} (known short flags: ${known.join(', ') || 'none'})`);
}

/** The flags (each with its default when not given) and the positional arguments. */
export function parseArgs(argv: string[], specs: FlagSpecs): { flags: Flags; positional: string[] } {
  const options = Object.fromEntries(Object.entries(specs).map(([name, s]) => [name, { type: s.type === 'bool' ? ('boolean' as const) : ('string' as const), ...(s.alias ? { short: s.alias } : {}) }]));
  // "-A=1" for a boolean -A (node would read "=" as a second short flag).
  const end = argv.indexOf('--') < 0 ? argv.length : argv.indexOf('--');
  for (const arg of argv.slice(0, end)) {
    const bool = /^-([A-Za-z])=/.exec(arg) && Object.entries(specs).find(([, s]) => s.alias === arg[1] && s.type === 'bool');
    if (bool) throw new UsageError(`--${bool[0]} takes no value`);
  }
  // Not strict: unknown flags and "-5" come back as tokens, and the messages are ours.
  const { tokens } = tokenize({ args: argv, options, strict: false, allowPositionals: true, tokens: true });
  const flags: Flags = {};
  for (const [name, s] of Object.entries(specs)) flags[name] = s.default;
  const positional: string[] = [];
  const negativeNumberAt = new Set<number>();
  for (const token of tokens) {
    if (token.kind === 'positional') positional.push(token.value);
    if (token.kind !== 'option') continue;
    // "-5" is a number, not a short flag 5 (a flag's own value may start with "-": `--n -5`).
    if (/^-\d/.test(argv[token.index]!)) {
      if (!negativeNumberAt.has(token.index)) positional.push(argv[token.index]!);
      negativeNumberAt.add(token.index);
      continue;
    }
    const spec = specs[token.name];
    if (!spec || (!token.rawName.startsWith('--') && spec.alias !== token.rawName.slice(1))) throw unknownFlag(token.rawName, specs);
    if (spec.type === 'bool') {
      if (token.value !== undefined) throw new UsageError(`--${token.name} takes no value`);
      flags[token.name] = true;
      continue;
    }
    if (token.value === undefined) throw new UsageError(`--${token.name} needs a value`);
    const raw = token.inlineValue && !token.rawName.startsWith('--') ? token.value.replace(/^=/, '') : token.value;
    flags[token.name] = convert(token.name, spec, raw);
  }
  return { flags, positional };
}

export function flagHelp(specs: FlagSpecs): string {
  return Object.entries(specs)
    .map(([name, s]) => {
      const arg = s.type === 'bool' ? '' : s.type === 'int' ? ' N' : s.type === 'enum' ? ` ${(s.choices ?? []).join('|')}` : ' VALUE';
      const def = s.default !== undefined && s.type !== 'bool' ? ` (default ${s.default})` : '';
      const short = s.alias ? `-${s.alias}, ` : '';
      const left = `  ${short}--${name}${arg}`;
      return (left.length < 26 ? left.padEnd(26) : left + ' ') + s.help + def;
    })
    .join('\n');
}
