// The vm tier (test/vm) on the host: ONE kernel VM (scripts/kernel-vm: Debian's kernel, this
// machine's userland) runs `node scripts/run-tests.js vm` in this checkout, and each VM test file
// is reported here as its own test with its pass/fail counts (the VM output's tail on failure).
// The VM not built fails under CI=true (the tier must not vanish silently) and skips otherwise.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { haveCommand, SKIP_NOT_ROOT } from '../lib/netns.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..'); // dist/test/integration
const vmDir = process.env.KERNEL_VM_DIR ?? '/var/cache/kernel-vm';
const inCi = process.env.CI === 'true';
// The runner gives this file TAP_TIMEOUT seconds (LIMITS_S); the VM gets 30 s less.
const vmLimitS = Math.max(60, Number(process.env.TAP_TIMEOUT ?? 600) - 30);
const TAIL_LINES = 40;

function notReady(): string | false {
  if (SKIP_NOT_ROOT) return SKIP_NOT_ROOT;
  const build = `bash ${path.join(root, 'scripts/kernel-vm/build')}${process.env.KERNEL_VM_DIR ? ` ${vmDir}` : ''}`;
  if (!haveCommand('qemu-system-x86_64')) return `qemu-system-x86_64 not installed: run bash scripts/bootstrap (as root), then ${build}`;
  const missing = ['initrd.gz', 'vmlinuz', 'modules'].filter((f) => !fs.existsSync(path.join(vmDir, f)));
  if (missing.length) return `the kernel VM is not built in ${vmDir} (no ${missing.join(', ')}): run ${build} (as root)`;
  return false;
}

interface FileResult {
  ok: boolean; passed: number; failed: number; skipped: number; failures: string[];
  lines: string[]; // the file's whole section
  failedLines: string[]; // the sections of its failed tests (what to show)
}

/** Per-file results from run-tests.js's output: `# Subtest: vm/F` ... `ok N - vm/F`, the file's tests 4 spaces in. */
function parseRunnerOutput(out: string): Map<string, FileResult> {
  const files = new Map<string, FileResult>();
  let current: FileResult | undefined;
  let testStart = 0; // where the current top-level test's lines start in current.lines
  for (const line of out.split('\n')) {
    const open = /^# Subtest: (vm\/\S+)$/.exec(line);
    if (open) {
      current = { ok: false, passed: 0, failed: 0, skipped: 0, failures: [], lines: [], failedLines: [] };
      testStart = 0;
      files.set(open[1]!, current);
      continue;
    }
    const close = /^(not )?ok \d+ - (vm\/\S+)/.exec(line);
    if (close && files.has(close[2]!)) {
      files.get(close[2]!)!.ok = !close[1];
      current = undefined;
      continue;
    }
    if (!current) continue;
    current.lines.push(line);
    if (line.startsWith('    # Subtest: ')) testStart = current.lines.length - 1;
    const test = /^ {4}(not )?ok \d+ - (.*?)(?: # (SKIP|TODO)\b.*)?(?: # time=.*)?$/.exec(line);
    if (!test) continue;
    if (test[3]) current.skipped++;
    else if (test[1]) {
      current.failed++;
      current.failures.push(test[2]!);
      current.failedLines.push(...current.lines.slice(testStart));
    }
    else current.passed++;
  }
  return files;
}

function runVmTier(): Promise<{ code: number | null; out: string; seconds: number }> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    // Its own process group: at a time-out here, the whole group (vm-tests, run, qemu) is stopped.
    const child = spawn('bash', [path.join(root, 'scripts/kernel-vm/vm-tests'), '--timeout', String(vmLimitS)], {
      cwd: root, detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, KERNEL_VM_DIR: vmDir },
    });
    const stopGroup = () => { try { process.kill(-child.pid!, 'SIGTERM'); } catch { /* already gone */ } };
    process.once('exit', stopGroup);
    const out: string[] = [];
    child.stdout.setEncoding('utf8').on('data', (c: string) => out.push(c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => out.push(c));
    child.on('error', reject);
    child.on('close', (code) => {
      process.removeListener('exit', stopGroup);
      resolve({ code, out: out.join(''), seconds: (Date.now() - started) / 1000 });
    });
  });
}

const tail = (lines: string[]) => lines.filter((l) => l.trim()).slice(-TAIL_LINES).join('\n');
const reason = notReady();
const expected = fs.existsSync(path.join(root, 'dist/test/vm'))
  ? fs.readdirSync(path.join(root, 'dist/test/vm')).filter((f) => f.endsWith('.test.js')).sort().map((f) => `vm/${f}`)
  : [];

if (reason) {
  if (inCi && !SKIP_NOT_ROOT) {
    t.test('kernel VM tier', async (t) => { t.fail(`CI=true and the vm tier cannot run: ${reason}`); });
  } else {
    t.test('kernel VM tier', { skip: reason }, async () => {});
  }
} else {
  const vm = await runVmTier();
  const files = parseRunnerOutput(vm.out);
  const vmTail = tail(vm.out.split('\n'));
  t.test(`kernel VM: node scripts/run-tests.js vm in ${root}`, async (t) => {
    t.ok(expected.length > 0, `vm test files compiled under ${root}/dist/test/vm`);
    const slowest = /^Slowest files: .*$/m.exec(vm.out);
    if (slowest) t.comment(`in the VM (boot + runner ${vm.seconds.toFixed(0)} s): ${slowest[0]}`);
    const summary = /^(\d+) passed, (\d+) failed, (\d+) skipped$/m.exec(vm.out);
    t.ok(summary, `the runner in the VM printed its summary (VM ran ${vm.seconds.toFixed(0)} s)`, summary ? {} : { vmOutputTail: vmTail });
    t.equal(vm.code, 0, `the VM run exited 0 (${summary?.[0] ?? 'no summary'})`, vm.code === 0 ? {} : { vmOutputTail: vmTail });
  });
  for (const rel of expected) {
    t.test(rel, async (t) => {
      const r = files.get(rel);
      if (!r) {
        t.fail(`${rel} was not run in the VM`, { vmOutputTail: vmTail });
        return;
      }
      const counts = `${r.passed} passed, ${r.failed} failed, ${r.skipped} skipped`;
      const ok = r.ok && r.failed === 0 && r.passed > 0;
      t.ok(ok, `${rel} in the VM: ${counts}${r.failures.length ? `; failed: ${r.failures.join('; ')}` : ''}`,
        ok ? {} : { vmOutputTail: tail(r.failedLines.length ? r.failedLines : r.lines) });
    });
  }
}
