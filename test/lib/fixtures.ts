// Golden files in test/fixtures: netlink vectors in netlink/ (made by capture.sh from what iproute2
// sends and receives) and rendered text (rulesets, plans). Fixtures stay in the source tree, so
// resolve them from dist/test/* back to test/.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Test } from 'tap';

const TEXT_FIXTURES = fileURLToPath(new URL('../../../test/fixtures/', import.meta.url));
const FIXTURES = TEXT_FIXTURES + 'netlink/';

/** test/fixtures/NAME as text. */
export function fixtureText(name: string): string {
  return readFileSync(TEXT_FIXTURES + name, 'utf8');
}

/** actual must equal test/fixtures/NAME; UPDATE_GOLDEN=1 rewrites the file instead (then review it). */
export function matchesGolden(t: Test, name: string, actual: string): void {
  const path = TEXT_FIXTURES + name;
  if (process.env.UPDATE_GOLDEN) writeFileSync(path, actual);
  if (!existsSync(path)) return void t.fail(`test/fixtures/${name} is missing: run with UPDATE_GOLDEN=1 and review it`);
  t.equal(actual, readFileSync(path, 'utf8'), `matches test/fixtures/${name}`);
}

/** A fixture's bytes: '#' lines are provenance comments, the rest is hex (whitespace ignored). */
export function golden(name: string): Buffer {
  const file = name.endsWith('.hex') ? name : `${name}.hex`;
  const text = readFileSync(FIXTURES + file, 'utf8');
  const digits = text.split('\n').filter((l) => !l.startsWith('#')).join('').replace(/\s+/g, '');
  if (!/^([0-9a-f]{2})*$/i.test(digits)) throw new Error(`fixture ${file}: not hex`);
  return Buffer.from(digits, 'hex');
}
