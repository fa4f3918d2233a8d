// Store keys of API objects, and the only way to get the names they are built from. A namespace or
// name from a URL or a body is text a client chose ("default/sub", "..", "UPPER", "%00"); it becomes
// a `Namespace` / `ObjectName` only by passing Kubernetes' rule here, before the store is touched,
// and storeKey/storePrefix take nothing else. (The brands are compile-time; storeKey also re-checks
// at run time, so a cast cannot smuggle a "/" into a key either.)
import { validateDns1123Label, validateDns1123Subdomain, type FieldError } from '../../api/validate.js';
import { ApiError, invalidError, notFound } from './status.js';
import type { ResourceDef } from './resources.js';

declare const checked: unique symbol;
/** A namespace that is a DNS-1123 label. */
export type Namespace = string & { readonly [checked]: 'namespace' };
/** An object name that follows its kind's rule (DNS-1035 label for services, DNS-1123 subdomain for nodes, ...). */
export type ObjectName = string & { readonly [checked]: 'name' };

const rule = (errors: FieldError[]): string => errors.map((e) => e.message.replace(/^Invalid value: .*?: /, '')).join('; ');

/** The namespace segment of a request path; 400 when no object could ever live in it. */
export function pathNamespace(text: string): Namespace {
  const errors = validateDns1123Label(text, 'metadata.namespace');
  if (errors.length > 0) throw new ApiError('BadRequest', `invalid namespace ${JSON.stringify(text)} in the request path: ${rule(errors)}`, { kind: 'namespaces', name: text });
  return text as Namespace;
}

/** The name segment of a request path: a name its kind cannot have names no object, so 404, as kube-apiserver answers. */
export function pathName(def: ResourceDef, text: string): ObjectName {
  if (def.validateName(text, 'metadata.name').length > 0) throw notFound(def.plural, text);
  return text as ObjectName;
}

/** metadata.name of a body the validator accepted (re-checked: the key must not depend on that). */
export function bodyName(def: ResourceDef, text: unknown): ObjectName {
  const errors = def.validateName(text, 'metadata.name');
  if (errors.length > 0) throw invalidError(def.kind, { kind: def.plural }, errors);
  return text as ObjectName;
}

// Every name rule above is a subset of this one: no "/", no "..", no upper case, at most 253 bytes.
const safeSegment = (text: unknown): boolean => typeof text === 'string' && validateDns1123Subdomain(text, '').length === 0;

/** <prefix>/<name> or <prefix>/<namespace>/<name>. */
export function storeKey(def: ResourceDef, namespace: Namespace | undefined, name: ObjectName): string {
  if (!safeSegment(name) || (def.namespaced && !safeSegment(namespace))) {
    throw new Error(`store key for ${def.plural} from unchecked text: namespace ${JSON.stringify(namespace)}, name ${JSON.stringify(name)}`);
  }
  return def.namespaced ? `${def.prefix}/${namespace}/${name}` : `${def.prefix}/${name}`;
}

/** Every object of the kind, or of the kind in one namespace. */
export function storePrefix(def: ResourceDef, namespace?: Namespace): string {
  if (!def.namespaced || namespace === undefined) return def.prefix;
  if (!safeSegment(namespace)) throw new Error(`store prefix for ${def.plural} from unchecked text: namespace ${JSON.stringify(namespace)}`);
  return `${def.prefix}/${namespace}`;
}
