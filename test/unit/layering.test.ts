// The layering of src/ (issue 14 item 5): dependency-cruiser with .dependency-cruiser.cjs finds no
// upward import and no cycle; the layer list itself points down and places every folder; and the
// same check does report an upward import and a cycle planted in a fixture tree.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..', '..');
const depcruise = path.join(root, 'node_modules', '.bin', 'depcruise');
const { MAY_IMPORT } = createRequire(import.meta.url)(path.join(root, 'scripts', 'layers.cjs')) as { MAY_IMPORT: Record<string, string[]> };

interface Violation { from: string; to: string; rule: { name: string }; cycle?: { name: string }[] }

function cruise(cwd: string, config: string): Violation[] {
  const r = spawnSync(depcruise, ['src', '--config', config, '--output-type', 'json'], { cwd, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.error || !r.stdout) throw new Error(`depcruise failed in ${cwd}: ${r.error?.message ?? r.stderr}`);
  return (JSON.parse(r.stdout) as { summary: { violations: Violation[] } }).summary.violations;
}

const describe = (v: Violation) => `${v.rule.name}: ${v.from} → ${v.to}${v.cycle ? ` (cycle ${v.cycle.map((c) => c.name).join(' → ')})` : ''}`;

t.test('src/ has no upward import and no import cycle', async (t) => {
  const violations = cruise(root, path.join(root, '.dependency-cruiser.cjs'));
  t.same(violations.map(describe), [], 'dependency-cruiser finds nothing (see scripts/layers.cjs for who may import whom)');
});

t.test('the layer list points down and places every folder of src/', async (t) => {
  const order = Object.keys(MAY_IMPORT);
  const upward = Object.entries(MAY_IMPORT).flatMap(([name, deps]) => deps.filter((dep) => !(order.indexOf(dep) >= 0 && order.indexOf(dep) < order.indexOf(name))).map((dep) => `${name} → ${dep}`));
  t.same(upward, [], 'every folder a folder may import comes before it in the list');
  const folders = fs.readdirSync(path.join(root, 'src'), { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
  t.same(folders.filter((f) => !(f in MAY_IMPORT)), [], 'every folder of src/ has its place in scripts/layers.cjs');
});

t.test('the check reports an upward import and a cycle (fixture tree)', async (t) => {
  const fixture = path.join(root, 'test', 'fixtures', 'layering');
  const found = cruise(fixture, path.join(root, '.dependency-cruiser.cjs')).map(describe).sort();
  t.equal(found.length, 2, found.join('; '));
  t.match(found[0], /^no-cycles: src\/net\/[ab]\.js → src\/net\/[ab]\.js \(cycle /, 'the cycle a → b → a');
  t.match(found[1], /^not-in-allowed: src\/proxy\/upward\.js → src\/agent\/daemon\.js$/, 'proxy importing agent');
});

t.test("each folder's README says what it may import, as scripts/layers.cjs has it", async (t) => {
  for (const [name, deps] of Object.entries(MAY_IMPORT)) {
    if (name === 'version') continue; // a file, not a folder
    const readme = path.join(root, 'src', name, 'README.md');
    const text = fs.existsSync(readme) ? fs.readFileSync(readme, 'utf8') : '';
    const said = /^May import: (.*?)\.(?: |$)/m.exec(text)?.[1];
    t.equal(said, deps.length ? deps.join(', ') : "nothing of podwire's", `src/${name}/README.md`);
  }
});

