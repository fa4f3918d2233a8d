// The IPAM contract shared by the CNI plugin (and later the agent): host-local's model. A network
// has range sets; ADD takes one address from every range set; reservations are keyed by
// (containerId, ifname) so DEL and GC can always find what a container holds.

/** One range of host-local's config: subnet plus optional bounds and gateway (all validated). */
export interface IpRange {
  subnet: string; // CIDR, e.g. "10.244.1.0/24" or "fd00::/64"
  rangeStart?: string; // first allocatable address (default: network + 1)
  rangeEnd?: string; // last allocatable address (default: broadcast - 1 for IPv4, last for IPv6)
  gateway?: string; // default: network + 1; never allocated
}

/** host-local's `ranges: [[range, ...], ...]`: one address is taken from each range set. */
export type RangeSet = IpRange[];

/** Who holds an address. Both fields validated by the CNI layer before they reach the store. */
export interface Owner {
  containerId: string;
  ifname: string;
}

export interface Allocation {
  /** Address with the prefix length of its range's subnet, e.g. "10.244.1.5/24". */
  address: string;
  gateway?: string;
  rangeSetIndex: number;
}

export interface Reservation extends Owner {
  ip: string; // plain address, e.g. "10.244.1.5"
}

export interface Ipam {
  /**
   * One address from every range set for this owner. Idempotent: when the owner already holds an
   * address in a range set, that one is returned again. `requested` (plain IPs) must each fall in
   * one range set and be free (or already held by this owner). Throws IpamError when a range set is
   * exhausted or a request cannot be met; then nothing stays reserved.
   */
  allocate(network: string, owner: Owner, rangeSets: RangeSet[], requested?: string[]): Allocation[];
  /** Release every address this owner holds in the network. Idempotent; no error when none. */
  release(network: string, owner: Owner): Reservation[];
  /** Release every reservation whose owner is not in `valid`; returns what was released. */
  gc(network: string, valid: Owner[]): Reservation[];
  list(network: string): Reservation[];
  /** Free addresses per range set (for STATUS). */
  free(network: string, rangeSets: RangeSet[]): number[];
}

export type IpamErrorKind = 'exhausted' | 'unavailable' | 'invalid' | 'io' | 'busy';

export class IpamError extends Error {
  readonly kind: IpamErrorKind;
  constructor(kind: IpamErrorKind, message: string) {
    super(message);
    this.name = 'IpamError';
    this.kind = kind;
  }
}
