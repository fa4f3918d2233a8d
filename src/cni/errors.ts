// CNI errors (SPEC.md "Error"): a well-known code, a short `msg`, and `details` that say what to do.
// Every failure path of the plugin ends in one of these; nothing else reaches stdout.

export const CNI_ERR = {
  INCOMPATIBLE_VERSION: 1,
  UNSUPPORTED_FIELD: 2,
  UNKNOWN_CONTAINER: 3,
  INVALID_ENV: 4,
  IO: 5,
  DECODE: 6,
  INVALID_CONFIG: 7,
  TRY_AGAIN_LATER: 11,
  NOT_AVAILABLE: 50,
  LIMITED_CONNECTIVITY: 51,
  /** podwire-specific (100+) */
  KERNEL: 100,
  IPAM_EXHAUSTED: 101,
  IPAM_DELEGATE: 102,
  CHECK_FAILED: 103,
  MASQ: 104,
  CONTROL_PLANE: 105,
} as const;

export class CniError extends Error {
  readonly code: number;
  readonly details: string;
  constructor(code: number, msg: string, details = '') {
    super(msg);
    this.name = 'CniError';
    this.code = code;
    this.details = details;
  }

  toJSON(cniVersion: string): { cniVersion: string; code: number; msg: string; details?: string } {
    return { cniVersion, code: this.code, msg: this.message, ...(this.details ? { details: this.details } : {}) };
  }
}

/** Wrap any thrown value as a CniError: kernel/netlink failures keep their own message. */
export function asCniError(err: unknown, code: number = CNI_ERR.KERNEL, context = ''): CniError {
  if (err instanceof CniError) return err;
  const e = err as { message?: string; code?: string; kind?: string };
  const prefix = context ? `${context}: ` : '';
  return new CniError(code, `${prefix}${e?.message ?? String(err)}`, e?.code ? `errno ${e.code}` : '');
}
