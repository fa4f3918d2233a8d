// The side-effect boundary of the IPAM: one store per network, used only between lock() and
// unlock(). Two implementations: DiskStore (disk-store.ts) and FakeStore (fake-store.ts).
import { CONTAINER_ID_RULE, IFNAME_RULE, containerIdProblem, ifnameProblem } from '../netlink/names.js';
import { IpamError, type Owner } from './types.js';

/** A reservation as stored: `name` is the file name (the IP); owner undefined when malformed. */
export interface StoredReservation {
  name: string;
  owner: Owner | undefined;
}

export interface IpamStore {
  readonly network: string;
  /** Take the network's exclusive lock, waiting a bounded time; IpamError('busy') on timeout. */
  lock(): void;
  unlock(): void;
  list(): StoredReservation[];
  /** Exclusive create of a complete record: false (and no change) when the IP is already reserved. */
  reserve(ip: string, owner: Owner): boolean;
  /** Remove one reservation by name (from list()); false when it was not there. */
  release(name: string): boolean;
  /** Last reserved IP of range set `index` (raw text, may be garbage), undefined when none. */
  readCursor(index: number): string | undefined;
  writeCursor(index: number, ip: string): void;
  /** Make every change so far durable (fsync); called before a mutating op returns. */
  sync(): void;
}

export type StoreFactory = (network: string) => IpamStore;

export const NETWORK_NAME_MAX = 128;
// The CNI spec's network name pattern: it cannot hold "/" or NUL, and cannot be "." or "..".
export const NETWORK_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/** A network name safe as one path component under dataDir; IpamError('invalid') otherwise. */
export function validateNetworkName(name: unknown): string {
  if (typeof name !== 'string' || name.length === 0) throw new IpamError('invalid', `network name: required, got ${JSON.stringify(name) ?? String(name)}`);
  if (name.length > NETWORK_NAME_MAX) throw new IpamError('invalid', `network name ${JSON.stringify(name.slice(0, 40))}...: longer than ${NETWORK_NAME_MAX} characters`);
  if (!NETWORK_NAME_RE.test(name)) {
    throw new IpamError('invalid', `network name ${JSON.stringify(name)}: must match ${NETWORK_NAME_RE.source} (letters, digits, "_", "." and "-"; no "/")`);
  }
  return name;
}

const CONTROL_RE = /[\x00-\x1f\x7f]/;

function checkOwnerField(value: unknown, field: string, problemOf: (v: unknown) => string | undefined, rule: string): string {
  const problem = problemOf(value);
  if (problem === 'required') throw new IpamError('invalid', `${field}: required non-empty string`);
  if (problem) throw new IpamError('invalid', `${field} ${JSON.stringify(String(value).slice(0, 80))}: ${problem} (${rule})`);
  return value as string;
}

/**
 * Owners are CNI attachments: a container ID and an interface name by the rules of
 * src/netlink/names.ts (which also keep them to one line each in the record).
 */
export function validateOwner(owner: unknown, field = 'owner'): Owner {
  if (typeof owner !== 'object' || owner === null) throw new IpamError('invalid', `${field}: must be {containerId, ifname}`);
  const o = owner as Record<string, unknown>;
  return {
    containerId: checkOwnerField(o.containerId, `${field}.containerId`, containerIdProblem, CONTAINER_ID_RULE),
    ifname: checkOwnerField(o.ifname, `${field}.ifname`, ifnameProblem, IFNAME_RULE),
  };
}

/** The record of a reservation: "<containerId>\n<ifname>\n". */
export function encodeOwner(owner: Owner): string {
  return `${owner.containerId}\n${owner.ifname}\n`;
}

// Records are read back leniently (decodeOwner): room for what releases with looser limits
// (container IDs up to 1,024 characters, interface names up to 64) may have written.
export const RECORD_MAX = 1024 + 64 + 2;

/** Parse a record strictly; undefined for anything but exactly two non-empty lines. */
export function decodeOwner(text: string): Owner | undefined {
  if (text.length > RECORD_MAX || !text.endsWith('\n')) return undefined;
  const lines = text.slice(0, -1).split('\n');
  if (lines.length !== 2) return undefined;
  const [containerId, ifname] = lines as [string, string];
  if (!containerId || !ifname || CONTROL_RE.test(containerId) || CONTROL_RE.test(ifname)) return undefined;
  return { containerId, ifname };
}
