// Request bodies are JSON in UTF-8 (RFC 8259 §8.1), and that is how they are parsed: a body
// declared in another charset would be read as something its sender did not write, so it is
// refused with 415 as kube-apiserver refuses media types it cannot decode.
import { ApiError } from './status.js';

/** The charset parameter of a Content-Type header, lower-cased and unquoted; undefined when absent. */
export function charsetOf(contentType: string): string | undefined {
  for (const param of contentType.split(';').slice(1)) {
    const eq = param.indexOf('=');
    const name = (eq < 0 ? param : param.slice(0, eq)).trim().toLowerCase();
    if (name !== 'charset') continue;
    const value = eq < 0 ? '' : param.slice(eq + 1).trim();
    return (value.length >= 2 && value.startsWith('"') && value.endsWith('"') ? value.slice(1, -1) : value).toLowerCase();
  }
  return undefined;
}

/** 415 for a Content-Type whose charset is not UTF-8 (no charset means UTF-8). */
export function checkCharset(contentType: string | undefined): void {
  if (contentType === undefined) return;
  const charset = charsetOf(contentType);
  if (charset === undefined || charset === 'utf-8') return;
  throw new ApiError('UnsupportedMediaType', `charset ${JSON.stringify(charset)} is not supported: send the body as UTF-8 (Content-Type: ${contentType.split(';')[0]!.trim()}, or with charset=utf-8)`);
}
