// What every debugging command shares for its output: the -o modes (a table, a wider table, JSON
// with documented fields), colour only on a terminal and never with NO_COLOR (no-color.org: set
// and not empty), the exit codes, and tables whose columns line up with colour codes in them.
import { UsageError } from '../../flags/flags.js';

/** 0 healthy, 1 the command found a problem, 2 usage error, 3 could not reach what it needs. */
export const EXIT = { OK: 0, PROBLEM: 1, USAGE: 2, UNREACHABLE: 3 } as const;

/** Something the command needs could not be reached (control plane, agent socket): exit 3. */
export class UnreachableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnreachableError';
  }
}

export type DebugOutput = 'table' | 'wide' | 'json';

export function parseDebugOutput(value: string | undefined): DebugOutput {
  if (value === undefined || value === '') return 'table';
  if (value === 'wide' || value === 'json') return value;
  throw new UsageError(`-o ${JSON.stringify(value)} is not supported here; use -o wide or -o json (default: a table)`);
}

/** Colour when writing to a terminal, unless NO_COLOR is set to anything but the empty string. */
export function colourEnabled(stream: { isTTY?: boolean }, env: Record<string, string | undefined>): boolean {
  return stream.isTTY === true && !(env.NO_COLOR !== undefined && env.NO_COLOR !== '');
}

export type Style = 'ok' | 'bad' | 'warn' | 'dim' | 'bold';
const SGR: Record<Style, string> = { ok: '32', bad: '31', warn: '33', dim: '2', bold: '1' };

export type Paint = (style: Style | undefined, text: string) => string;

export function painter(enabled: boolean): Paint {
  return (style, text) => (enabled && style && text !== '' ? `\x1b[${SGR[style]}m${text}\x1b[0m` : text);
}

/** A table cell: its text and, optionally, how to colour it. */
export type Cell = string | { text: string; style?: Style };

const cellText = (c: Cell): string => (typeof c === 'string' ? c : c.text);
const cellStyle = (c: Cell): Style | undefined => (typeof c === 'string' ? undefined : c.style);

/**
 * Columns padded to their widest text plus 3 spaces (kubectl's look), the last one unpadded;
 * colour goes around the text after padding is computed, so codes never shift a column.
 */
export function renderTable(headers: string[], rows: Cell[][], paint: Paint = painter(false)): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => cellText(r[i] ?? '').length)));
  const line = (cells: Cell[], headerRow: boolean) =>
    cells
      .map((c, i) => {
        const text = cellText(c);
        const pad = i === cells.length - 1 ? '' : ' '.repeat(widths[i]! - text.length + 3);
        return paint(headerRow ? 'bold' : cellStyle(c), text) + pad;
      })
      .join('')
      .trimEnd();
  return [line(headers, true), ...rows.map((r) => line(r, false))].join('\n');
}

/** -o json: two-space indented, one trailing newline added by the caller's println. */
export function formatJson(value: unknown): string {
  return JSON.stringify(value, null, 2);
}
