// Lab naming: every namespace of a lab run starts with a per-run prefix "pw-<6 hex>-", so a run can
// only ever find and delete its own objects.
import { randomBytes } from 'node:crypto';

export const LAB_PREFIX_RE = /^pw-[0-9a-z]{1,12}-$/;

export function newLabPrefix(): string {
  return `pw-${randomBytes(3).toString('hex')}-`;
}

export function validateLabPrefix(prefix: string): void {
  if (!LAB_PREFIX_RE.test(prefix)) {
    throw new Error(`invalid lab prefix ${JSON.stringify(prefix)}: expected "pw-" + 1-12 of [0-9a-z] + "-", e.g. pw-3fa9c1-`);
  }
}

export const underlayNetnsName = (prefix: string) => `${prefix}underlay`;
export const nodeNetnsName = (prefix: string, node: string) => `${prefix}${node}`;
export const nodeName = (i: number) => `node${i}`;
