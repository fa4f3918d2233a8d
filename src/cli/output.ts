// What `podwire get` prints: the tables of src/printers/tables.ts, or the objects as JSON / YAML.
import YAML from 'yaml';
import type { KubeObject } from '../api/objects.js';
import { UsageError } from '../flags/flags.js';

export * from '../printers/tables.js';

export type OutputFormat = 'table' | 'wide' | 'json' | 'yaml';

export function parseOutputFormat(value: string | undefined): OutputFormat {
  if (value === undefined || value === '') return 'table';
  if (value === 'wide' || value === 'json' || value === 'yaml') return value;
  throw new UsageError(`-o ${JSON.stringify(value)} is not supported; use -o wide, -o json or -o yaml`);
}

/**
 * JSON or YAML text: the object itself when one was asked for by name, else a kubectl-style
 * `kind: List` (also for one or no items, so scripts can always read `.items`).
 */
export function formatObjects(objects: KubeObject[], format: 'json' | 'yaml', single: boolean): string {
  const value = single && objects.length === 1 ? objects[0] : { apiVersion: 'v1', kind: 'List', metadata: { resourceVersion: '' }, items: objects };
  // kubectl indents JSON by 4; YAML.stringify ends with a newline of its own.
  return format === 'json' ? JSON.stringify(value, null, 4) : YAML.stringify(value).replace(/\n$/, '');
}
