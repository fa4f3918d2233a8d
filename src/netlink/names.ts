// The two names a CNI attachment is keyed by, checked in one place for every layer that takes
// them: the CNI environment (src/cni/env.ts), the IPAM store's reservation records
// (src/ipam/store.ts), the masquerade element comments (src/cni/masq.ts), and, for interface
// names, every netlink request that names a link (link.ts).
//
// - Interface names, the kernel's rule (net/core/dev.c dev_valid_name, which libcni's
//   ValidateInterfaceName copies): 1-15 bytes (IFNAMSIZ 16 with the NUL), not "." or "..", no
//   "/", ":" or whitespace. netlink requests use this rule: the kernel would refuse anything else.
// - Attachment interface names (CNI_IFNAME, IPAM owners, masquerade owners): the kernel's rule,
//   and only printable ASCII without quotes or backslash: the name is written inside a "..."
//   nft comment (nft strings have no escapes) and one per line into reservation files. The CNI
//   spec lets a plugin refuse a name it cannot use; refusing it up front (error 4) beats failing
//   half way through ADD.
// - Container IDs, the CNI spec's rule (libcni's ValidateContainerID): a letter or digit, then
//   letters, digits, "_", "." and "-". The spec sets no length limit; podwire takes at most 255
//   characters (runtimes use 64 hex digits) so hostile input cannot grow what it is written into.
//
// Each function returns why the name is invalid (a phrase to put after the value), or undefined.

export const IFNAMSIZ = 16;
export const IFNAME_MAX_BYTES = IFNAMSIZ - 1;
export const CONTAINER_ID_MAX = 255;
export const CONTAINER_ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/** The kernel's rule, as one sentence for error details. */
export const KERNEL_IFNAME_RULE = 'an interface name is 1-15 bytes without whitespace, "/" or ":", and not "." or ".."';
/** The rule for attachment interface names, as one sentence for error details. */
export const IFNAME_RULE = 'an interface name is 1-15 printable ASCII characters without whitespace, quotes, backslash, "/" or ":", and not "." or ".."';
/** The container-ID rule, as one sentence for error details. */
export const CONTAINER_ID_RULE = `a container ID is 1-${CONTAINER_ID_MAX} characters: letters, digits, "_", "." and "-", starting with a letter or digit`;

const CONTROL_RE = /[\x00-\x1f\x7f]/;

/** Why `name` is not an interface name the kernel accepts; undefined when it is one. */
export function kernelIfnameProblem(name: unknown): string | undefined {
  if (typeof name !== 'string' || name.length === 0) return 'required';
  if (Buffer.byteLength(name) > IFNAME_MAX_BYTES) return `longer than ${IFNAME_MAX_BYTES} bytes`;
  if (name === '.' || name === '..') return 'is "." or ".."';
  if (/[\s/:\0]/.test(name)) return 'contains whitespace, "/" or ":"';
  return undefined;
}

/** Why `name` is not a valid attachment interface name (CNI_IFNAME); undefined when it is one. */
export function ifnameProblem(name: unknown): string | undefined {
  const kernel = kernelIfnameProblem(name);
  if (kernel) return kernel;
  if (!/^[\x21-\x7e]+$/.test(name as string)) return 'contains a character other than printable ASCII';
  if (/["'\\]/.test(name as string)) return 'contains a quote or backslash';
  return undefined;
}

/** Why `id` is not a valid container ID (CNI_CONTAINERID); undefined when it is one. */
export function containerIdProblem(id: unknown): string | undefined {
  if (typeof id !== 'string' || id.length === 0) return 'required';
  if (id.length > CONTAINER_ID_MAX) return `longer than ${CONTAINER_ID_MAX} characters`;
  if (CONTROL_RE.test(id)) return 'contains a control character';
  if (!CONTAINER_ID_RE.test(id)) return 'must start with a letter or digit and hold only letters, digits, "_", "." and "-"';
  return undefined;
}
