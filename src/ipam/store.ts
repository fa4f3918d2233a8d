// The side-effect boundary of the IPAM: one store per network, used only between lock() and
// unlock(). Two implementations: DiskStore (disk-store.ts) and FakeStore (fake-store.ts).
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
export const CONTAINER_ID_MAX = 1024;
export const IFNAME_MAX = 64;

function checkOwnerField(value: unknown, field: string, max: number): string {
  if (typeof value !== 'string' || value.length === 0) throw new IpamError('invalid', `${field}: required non-empty string`);
  if (value.length > max) throw new IpamError('invalid', `${field}: longer than ${max} characters`);
  if (CONTROL_RE.test(value)) throw new IpamError('invalid', `${field} ${JSON.stringify(value)}: contains a control character`);
  return value;
}

/** Owner fields must fit the one-per-line record format: non-empty, no newline or NUL. */
export function validateOwner(owner: unknown, field = 'owner'): Owner {
  if (typeof owner !== 'object' || owner === null) throw new IpamError('invalid', `${field}: must be {containerId, ifname}`);
  const o = owner as Record<string, unknown>;
  return {
    containerId: checkOwnerField(o.containerId, `${field}.containerId`, CONTAINER_ID_MAX),
    ifname: checkOwnerField(o.ifname, `${field}.ifname`, IFNAME_MAX),
  };
}

/** The record of a reservation: "<containerId>\n<ifname>\n". */
export function encodeOwner(owner: Owner): string {
  return `${owner.containerId}\n${owner.ifname}\n`;
}

export const RECORD_MAX = CONTAINER_ID_MAX + IFNAME_MAX + 2;

/** Parse a record strictly; undefined for anything but exactly two non-empty lines. */
export function decodeOwner(text: string): Owner | undefined {
  if (text.length > RECORD_MAX || !text.endsWith('\n')) return undefined;
  const lines = text.slice(0, -1).split('\n');
  if (lines.length !== 2) return undefined;
  const [containerId, ifname] = lines as [string, string];
  if (!containerId || !ifname || CONTROL_RE.test(containerId) || CONTROL_RE.test(ifname)) return undefined;
  return { containerId, ifname };
}
