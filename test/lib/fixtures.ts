// Golden netlink vectors in test/fixtures/netlink (made by capture.sh from what iproute2 sends and
// receives). Fixtures stay in the source tree, so resolve them from dist/test/* back to test/.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const FIXTURES = fileURLToPath(new URL('../../../test/fixtures/netlink/', import.meta.url));

/** A fixture's bytes: '#' lines are provenance comments, the rest is hex (whitespace ignored). */
export function golden(name: string): Buffer {
  const file = name.endsWith('.hex') ? name : `${name}.hex`;
  const text = readFileSync(FIXTURES + file, 'utf8');
  const digits = text.split('\n').filter((l) => !l.startsWith('#')).join('').replace(/\s+/g, '');
  if (!/^([0-9a-f]{2})*$/i.test(digits)) throw new Error(`fixture ${file}: not hex`);
  return Buffer.from(digits, 'hex');
}
