// API errors as Kubernetes Status objects: one ApiError class the handlers throw, turned into a
// Status body with the matching HTTP code by the server's error handler. kubectl prints
// `Error from server (Reason): message` from these, as it does for kube-apiserver.
import type { Status, StatusCause, StatusReason } from '../../api/objects.js';
import { formatFieldErrors, type FieldError } from '../../api/validate.js';

const CODES: Record<StatusReason, number> = {
  BadRequest: 400,
  Unauthorized: 401,
  Forbidden: 403,
  NotFound: 404,
  MethodNotAllowed: 405,
  AlreadyExists: 409,
  Conflict: 409,
  Gone: 410,
  Expired: 410,
  RequestEntityTooLarge: 413,
  UnsupportedMediaType: 415,
  // kube-apiserver answers 422 for Invalid; podwire's API contract is 400 for every bad input.
  // kubectl formats the message from `reason`, so it reads the same either way.
  Invalid: 400,
  InternalError: 500,
  ServiceUnavailable: 503,
};

export interface ObjectRef {
  kind?: string; // plural resource name, as kube-apiserver puts it in details.kind
  name?: string;
}

export class ApiError extends Error {
  readonly code: number;
  constructor(
    readonly reason: StatusReason,
    message: string,
    readonly ref: ObjectRef = {},
    readonly causes?: StatusCause[],
  ) {
    super(message);
    this.name = 'ApiError';
    this.code = CODES[reason];
  }

  toStatus(): Status {
    return statusOf(this.code, this.reason, this.message, this.ref, this.causes);
  }
}

export function statusOf(code: number, reason: StatusReason | undefined, message: string, ref: ObjectRef = {}, causes?: StatusCause[]): Status {
  const details = ref.kind || ref.name || causes ? { ...(ref.name ? { name: ref.name } : {}), ...(ref.kind ? { kind: ref.kind } : {}), ...(causes ? { causes } : {}) } : undefined;
  return { apiVersion: 'v1', kind: 'Status', metadata: {}, status: 'Failure', message, ...(reason ? { reason } : {}), ...(details ? { details } : {}), code };
}

/** 422 Invalid, with one cause per field error, worded like kube-apiserver. */
export function invalidError(kindName: string, ref: ObjectRef, errors: readonly FieldError[]): ApiError {
  const what = ref.name ? `${kindName} ${JSON.stringify(ref.name)}` : kindName;
  return new ApiError('Invalid', `${what} is invalid: ${formatFieldErrors(errors)}`, ref, errors.map((e) => ({ reason: 'FieldValueInvalid', message: e.message, field: e.field })));
}

export const notFound = (resource: string, name: string): ApiError => new ApiError('NotFound', `${resource} ${JSON.stringify(name)} not found`, { kind: resource, name });

export const alreadyExists = (resource: string, name: string): ApiError => new ApiError('AlreadyExists', `${resource} ${JSON.stringify(name)} already exists`, { kind: resource, name });

export const conflict = (resource: string, name: string, why = 'the object has been modified; please apply your changes to the latest version and try again'): ApiError =>
  new ApiError('Conflict', `Operation cannot be fulfilled on ${resource} ${JSON.stringify(name)}: ${why}`, { kind: resource, name });
