// Issue 19 item 6: no shell strings anywhere. Every program podwire runs gets its argv as an array
// (spawn/execFile with shell off); nothing is handed to /bin/sh, so no input (a container ID, an
// ifname, a service name) can ever be read as shell syntax. This scans the TypeScript and
// JavaScript of src/, bench/ and scripts/ and the C of native/ for the ways to reach a shell, and
// checks the scanner itself on snippets that must and must not be flagged.
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..', '..');

/**
 * [what, pattern] for JS/TS: each is a way to have a string run by a shell. A shell running one of
 * the repository's own script files (`bash scripts/kernel-vm/run …`) is a program with its argv;
 * a command line for `-c` is not.
 */
const JS_RULES: [string, RegExp][] = [
  ['a shell option', /\bshell\s*:\s*(true|['"`])/],
  ['child_process exec/execSync imported (they run /bin/sh -c)', /import\s*\{[^}]*\b(exec|execSync)\b[^}]*\}\s*from\s*['"](node:)?child_process['"]/],
  ['child_process.exec/execSync called', /\b(child_process|childProcess|cp)\s*\.\s*(exec|execSync)\s*\(/],
  ['a shell with -c in an argv', /['"`](\/usr)?(\/bin\/)?(sh|bash|dash|zsh|ash)['"`]\s*,\s*\[?\s*['"`]-[a-z]*c['"`]/],
];
const C_RULES: [string, RegExp][] = [
  ['system()', /\bsystem\s*\(/],
  ['popen()', /\bpopen\s*\(/],
  ['a shell by path', /"\/bin\/(sh|bash)"/],
];

function files(dir: string, exts: string[]): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return e.name === 'node_modules' ? [] : files(p, exts);
    return exts.some((x) => e.name.endsWith(x)) ? [p] : [];
  });
}

/** Findings "file:line: what" for one file's text. */
export function scan(file: string, text: string, rules: [string, RegExp][]): string[] {
  const out: string[] = [];
  text.split('\n').forEach((line, i) => {
    const code = line.replace(/\/\/.*$/, ''); // a comment may name what it avoids
    for (const [what, re] of rules) if (re.test(code)) out.push(`${file}:${i + 1}: ${what}: ${line.trim().slice(0, 120)}`);
  });
  return out;
}

t.test('the scanner flags each way to reach a shell, and argv-only calls not', async (t) => {
  const bad = [
    "spawn('ls', [dir], { shell: true })",
    "import { exec } from 'node:child_process';",
    "import { execFileSync, execSync } from 'child_process';",
    "cp.exec(`ip link del ${name}`)",
    "spawnSync('sh', ['-c', cmd])",
    "execFileSync('/bin/bash', ['-ec', script])",
    "spawn('ip', ['netns', 'exec', ns, 'sh', '-c', cmd])",
  ];
  for (const b of bad) t.equal(scan('x.ts', b, JS_RULES).length > 0, true, `flagged: ${b}`);
  const good = [
    "spawnSync('ip', ['netns', 'exec', ns, 'ping', '-c', '1', ip])",
    "execFileSync('nft', ['-f', '-'], { input })",
    "import { execFileSync, spawn } from 'node:child_process';",
    "// never spawn('sh', ['-c', ...]): argv only",
    "spawnSync('bash', [run, '--mem', '512', job, '3600'])",
    "const shellQuote = (s: string) => s;",
  ];
  for (const g of good) t.same(scan('x.ts', g, JS_RULES), [], `not flagged: ${g}`);
  t.ok(scan('x.c', 'if (system(cmd)) return 1;', C_RULES).length > 0, 'C: system() flagged');
  t.ok(scan('x.c', 'FILE *p = popen(cmd, "r");', C_RULES).length > 0, 'C: popen() flagged');
  t.same(scan('x.c', 'execv(path, argv);', C_RULES), [], 'C: execv not flagged');
});

t.test('no shell invocation in src/, bench/, scripts/ or native/', async (t) => {
  const js = [...files(path.join(ROOT, 'src'), ['.ts']), ...files(path.join(ROOT, 'bench'), ['.ts']), ...files(path.join(ROOT, 'scripts'), ['.js', '.cjs', '.mjs', '.ts'])];
  const c = files(path.join(ROOT, 'native'), ['.c', '.h']);
  t.ok(js.length > 100, `${js.length} TypeScript/JavaScript files scanned`);
  t.ok(c.length >= 1, `${c.length} C file(s) scanned`);
  const findings = [
    ...js.flatMap((f) => scan(path.relative(ROOT, f), fs.readFileSync(f, 'utf8'), JS_RULES)),
    ...c.flatMap((f) => scan(path.relative(ROOT, f), fs.readFileSync(f, 'utf8'), C_RULES)),
  ];
  t.same(findings, [], 'argv only: pass the program and its arguments as an array, never a command line');
});
