#!/usr/bin/env node
// Runs the compiled tap tests and ends with the line CI reads: "N passed, N failed, N skipped".
// A test is a top-level t.test() of a file; a file that fails outside any test counts as one failure.
// Usage: node scripts/run-tests.js [unit|integration] [extra tap args...]
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const tiers = ['unit', 'integration'];
const args = process.argv.slice(2);
const selected = tiers.includes(args[0]) ? [args.shift()] : tiers;

function findTests(dir) {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return findTests(p);
    return e.name.endsWith('.test.js') ? [p] : [];
  });
}

const files = selected.flatMap((tier) => findTests(path.join(root, 'dist', 'test', tier)).sort());
if (files.length === 0) {
  console.error('run-tests: no compiled tests under dist/test: run `npm run build` first');
  process.exit(1);
}

const tapBin = path.join(root, 'node_modules', '.bin', 'tap');
const tapArgs = ['--disable-coverage', '--reporter=tap', '--jobs=2', '--timeout=600', ...args, ...files];
const child = spawn(tapBin, tapArgs, { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });

let passed = 0, failed = 0, skipped = 0;
const failures = [];
let fileFailuresCounted = 0;
let buffered = '';
const topRe = /^(not )?ok \d+ - (\S+)/;
const testRe = /^ {4}(not )?ok \d+ - (.*?)(?: # (SKIP|TODO)\b(.*))?(?: # time=.*)?$/;

function onLine(line) {
  process.stdout.write(line + '\n');
  const m = testRe.exec(line);
  if (m) {
    if (m[3]) skipped++;
    else if (m[1]) { failed++; fileFailuresCounted++; failures.push(m[2]); }
    else passed++;
    return;
  }
  const top = topRe.exec(line);
  if (top) {
    if (top[1] && fileFailuresCounted === 0) { failed++; failures.push(`${top[2]} (file failed outside a test)`); }
    fileFailuresCounted = 0;
  }
}

child.stdout.setEncoding('utf8').on('data', (chunk) => {
  buffered += chunk;
  let nl;
  while ((nl = buffered.indexOf('\n')) >= 0) {
    onLine(buffered.slice(0, nl));
    buffered = buffered.slice(nl + 1);
  }
});

child.on('close', (code) => {
  if (buffered) onLine(buffered);
  if (failures.length) console.log('\nFailed:\n' + failures.map((f) => `  - ${f}`).join('\n'));
  if (code !== 0 && failed === 0) { failed++; console.log(`tap exited with ${code}`); }
  console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
  process.exit(failed > 0 ? 1 : 0);
});
