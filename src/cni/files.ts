// Files a network config names (subnetFile, controlPlane.tokenFile/caFile): read only when they are
// regular files and small. A FIFO or a device named there would block the plugin in open() or
// read() forever; a huge file would be read whole.
import fs from 'node:fs';

export class FileReadError extends Error {
  /** errno code (ENOENT, EACCES, ...), or ENOTREG / EFBIG for what this module refuses. */
  readonly code: string;
  constructor(message: string, code: string) {
    super(message);
    this.name = 'FileReadError';
    this.code = code;
  }
}

function kindOf(st: fs.Stats): string {
  if (st.isFIFO()) return 'a FIFO';
  if (st.isDirectory()) return 'a directory';
  if (st.isSocket()) return 'a socket';
  return 'a device';
}

const errnoOf = (err: unknown): string => (err as NodeJS.ErrnoException).code ?? 'EIO';

/** The file's content (at most maxBytes), opened with O_NONBLOCK after a type check. */
export function readSmallFile(file: string, maxBytes: number): Buffer {
  let fd: number;
  try {
    const st = fs.statSync(file);
    if (!st.isFile()) throw new FileReadError(`${file} is ${kindOf(st)}, not a regular file`, 'ENOTREG');
    // O_NONBLOCK: should it be swapped for a FIFO after the stat, open() still returns at once.
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK | fs.constants.O_NOCTTY);
  } catch (err) {
    if (err instanceof FileReadError) throw err;
    throw new FileReadError(`cannot open ${file}: ${errnoOf(err)}`, errnoOf(err));
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new FileReadError(`${file} is ${kindOf(st)}, not a regular file`, 'ENOTREG');
    if (st.size > maxBytes) throw new FileReadError(`${file} is ${st.size} bytes, more than the ${maxBytes} allowed`, 'EFBIG');
    const buf = Buffer.alloc(maxBytes + 1);
    let n = 0;
    for (;;) {
      const got = fs.readSync(fd, buf, n, buf.length - n, null);
      if (got === 0) return buf.subarray(0, n);
      n += got;
      if (n > maxBytes) throw new FileReadError(`${file} grew past the ${maxBytes} bytes allowed while being read`, 'EFBIG');
    }
  } catch (err) {
    if (err instanceof FileReadError) throw err;
    throw new FileReadError(`cannot read ${file}: ${errnoOf(err)}`, errnoOf(err));
  } finally {
    fs.closeSync(fd);
  }
}
