// A small, strict argument parser: every flag is declared with its type; unknown flags, missing
// values and bad numbers are errors that name the flag.
export type FlagType = 'string' | 'int' | 'bool';
export interface FlagSpec {
  type: FlagType;
  default?: string | number | boolean;
  help: string;
  min?: number;
  max?: number;
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
  if (spec.type === 'string') return raw;
  if (!/^-?\d+$/.test(raw)) throw new UsageError(`--${name} expects an integer, got ${JSON.stringify(raw)}`);
  const n = Number(raw);
  if ((spec.min !== undefined && n < spec.min) || (spec.max !== undefined && n > spec.max)) {
    throw new UsageError(`--${name} must be in ${spec.min ?? '-∞'}..${spec.max ?? '∞'}, got ${n}`);
  }
  return n;
}

// `-x`, `-xVALUE`, `-x=VALUE` with a letter x; "-" (stdin) and "-5" stay positional.
const SHORT_FLAG = /^-([A-Za-z])(.*)$/;

function longName(letter: string, specs: FlagSpecs): string {
  const found = Object.entries(specs).find(([, s]) => s.alias === letter);
  if (!found) {
    const known = Object.values(specs).flatMap((s) => (s.alias ? ['-' + s.alias] : []));
    throw new UsageError(`unknown flag -${letter} (known short flags: ${known.join(', ') || 'none'})`);
  }
  return found[0];
}

/** The long name an argument sets and its inline value, or undefined for a positional argument. */
function flagOf(arg: string, specs: FlagSpecs): { name: string; inline?: string } | undefined {
  if (arg.startsWith('--')) {
    const eq = arg.indexOf('=');
    return eq < 0 ? { name: arg.slice(2) } : { name: arg.slice(2, eq), inline: arg.slice(eq + 1) };
  }
  const short = SHORT_FLAG.exec(arg);
  if (!short) return undefined;
  const name = longName(short[1]!, specs);
  return short[2] === '' ? { name } : { name, inline: short[2]!.replace(/^=/, '') };
}

export function parseArgs(argv: string[], specs: FlagSpecs): { flags: Flags; positional: string[] } {
  const flags: Flags = {};
  for (const [name, s] of Object.entries(specs)) flags[name] = s.default;
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') {
      positional.push(...argv.slice(i + 1));
      break;
    }
    const flag = flagOf(arg, specs);
    if (!flag) {
      positional.push(arg);
      continue;
    }
    const { name, inline } = flag;
    const spec = specs[name];
    if (!spec) throw new UsageError(`unknown flag --${name} (known: ${Object.keys(specs).map((k) => '--' + k).join(', ') || 'none'})`);
    if (spec.type === 'bool') {
      if (inline !== undefined) throw new UsageError(`--${name} takes no value`);
      flags[name] = true;
      continue;
    }
    const raw = inline ?? argv[++i];
    if (raw === undefined) throw new UsageError(`--${name} needs a value`);
    flags[name] = convert(name, spec, raw);
  }
  return { flags, positional };
}

export function flagHelp(specs: FlagSpecs): string {
  return Object.entries(specs)
    .map(([name, s]) => {
      const arg = s.type === 'bool' ? '' : s.type === 'int' ? ' N' : ' VALUE';
      const def = s.default !== undefined && s.type !== 'bool' ? ` (default ${s.default})` : '';
      const short = s.alias ? `-${s.alias}, ` : '';
      return `  ${short}--${name}${arg}`.padEnd(26) + s.help + def;
    })
    .join('\n');
}
