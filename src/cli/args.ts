// A small, strict argument parser: every flag is declared with its type; unknown flags, missing
// values and bad numbers are errors that name the flag.
export type FlagType = 'string' | 'int' | 'bool';
export interface FlagSpec {
  type: FlagType;
  default?: string | number | boolean;
  help: string;
  min?: number;
  max?: number;
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
    if (!arg.startsWith('--')) {
      positional.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    const spec = specs[name];
    if (!spec) throw new UsageError(`unknown flag --${name} (known: ${Object.keys(specs).map((k) => '--' + k).join(', ') || 'none'})`);
    if (spec.type === 'bool') {
      if (eq >= 0) throw new UsageError(`--${name} takes no value`);
      flags[name] = true;
      continue;
    }
    const raw = eq >= 0 ? arg.slice(eq + 1) : argv[++i];
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
      return `  --${name}${arg}`.padEnd(26) + s.help + def;
    })
    .join('\n');
}
