import t from 'tap';
import { parseArgs, UsageError, type FlagSpecs } from '../../src/flags/flags.js';

const specs: FlagSpecs = {
  nodes: { type: 'int', default: 3, min: 1, max: 64, help: 'n' },
  prefix: { type: 'string', help: 'p' },
  keep: { type: 'bool', help: 'k' },
};

t.test('flags: defaults, both value forms, booleans, positionals', async (t) => {
  t.same(parseArgs([], specs), { flags: { nodes: 3, prefix: undefined, keep: undefined }, positional: [] });
  t.same(parseArgs(['--nodes', '5', '--prefix=pw-x-', '--keep', 'extra'], specs).flags, { nodes: 5, prefix: 'pw-x-', keep: true });
  t.same(parseArgs(['a', '--', '--nodes'], specs).positional, ['a', '--nodes']);
});

t.test('flags: every bad input is a UsageError naming the flag', async (t) => {
  const bad: Array<[string[], RegExp]> = [
    [['--nope'], /unknown flag --nope/],
    [['--nodes'], /--nodes needs a value/],
    [['--nodes', 'three'], /--nodes expects an integer, got "three"/],
    [['--nodes', '0'], /--nodes must be in 1\.\.64, got 0/],
    [['--nodes', '65'], /--nodes must be in 1\.\.64, got 65/],
    [['--nodes', '1.5'], /expects an integer/],
    [['--keep=yes'], /--keep takes no value/],
  ];
  const modes: FlagSpecs = { mode: { type: 'enum', choices: ['nftables', 'iptables'], default: 'nftables', help: 'm' } };
  t.equal(parseArgs([], modes).flags.mode, 'nftables', 'an enum default');
  t.equal(parseArgs(['--mode=iptables'], modes).flags.mode, 'iptables');
  t.throws(() => parseArgs(['--mode', 'ipvs'], modes), /--mode "ipvs": expected nftables, iptables/, 'a value outside the enum names the choices');
  for (const [argv, re] of bad) t.throws(() => parseArgs(argv, specs), re, argv.join(' '));
  t.throws(() => parseArgs(['--nope'], specs), UsageError);
});

t.test('flags: one-letter aliases in every form, "-" and negative numbers stay positional', async (t) => {
  const withAliases: FlagSpecs = { output: { type: 'string', alias: 'o', help: 'o' }, all: { type: 'bool', alias: 'A', help: 'a' }, n: { type: 'int', help: 'n' } };
  t.same(parseArgs(['get', '-o', 'json', '-A'], withAliases), { flags: { output: 'json', all: true, n: undefined }, positional: ['get'] });
  t.equal(parseArgs(['-ojson'], withAliases).flags.output, 'json');
  t.equal(parseArgs(['-o=yaml'], withAliases).flags.output, 'yaml');
  t.same(parseArgs(['-', '-5'], withAliases).positional, ['-', '-5']);
  t.equal(parseArgs(['--n', '-5'], withAliases).flags.n, -5, 'a value may start with "-"');
  t.throws(() => parseArgs(['-x'], withAliases), /unknown flag -x \(known short flags: -o, -A\)/);
  t.throws(() => parseArgs(['-o'], withAliases), /--output needs a value/);
  t.throws(() => parseArgs(['-A=1'], withAliases), /--all takes no value/);
  // Short flags group as getopt's (node:util parseArgs): -Ao json is -A -o json; -Ax names the unknown -x.
  t.same(parseArgs(['-Ao', 'json'], withAliases).flags, { output: 'json', all: true, n: undefined });
  t.throws(() => parseArgs(['-Ax'], withAliases), /unknown flag -x \(known short flags: -o, -A\)/);
  t.throws(() => parseArgs(['-n'], specs), /unknown flag -n \(known short flags: none\)/, 'specs without aliases refuse short flags');
});
