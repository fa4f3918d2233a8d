// What the agent's service proxy loop needs from a mode (nftables, iptables, ipvs): apply a
// ProxyInput — fully, or only for the service ports that changed — and remove everything it owns
// (a mode switch removes the other mode's rules).
import type { ProxyInput } from './types.js';
import type { DnatCounter } from './counters.js';

export type ProxyMode = 'nftables' | 'iptables' | 'ipvs';
export const PROXY_MODES: readonly ProxyMode[] = ['nftables', 'iptables', 'ipvs'];

export interface ProxySyncReport {
  /** Service ports rendered in this sync ("full" = all). */
  scope: 'full' | 'partial';
  /** Bytes of ruleset text written (0 = nothing to do). */
  bytes: number;
  ms: number;
}

export interface ProxyBackend {
  readonly mode: ProxyMode;
  /** changed undefined = full sync (first sync, node changes, after a failure). */
  sync(input: ProxyInput, changed: ReadonlySet<string> | undefined): ProxySyncReport;
  /** Removes every rule, chain, map and set this mode owns; fine when there are none. */
  remove(): void;
  /**
   * A cheap check for the periodic resync, when the mode has one: false when the kernel visibly
   * lacks what the last sync installed (someone deleted our table, a chain, a map), so a full
   * sync must put it back. true says nothing about rules edited inside our objects: the agent
   * still does a full sync every FULL_SYNC_PERIOD_MS, as kube-proxy does.
   */
  intact?(): boolean;
  /**
   * The per-endpoint DNAT counters of the live ruleset (`podwire services`), for the given
   * service port keys (read from their own chains and elements only) or, without keys, all of
   * them. Throws when the mode has not synced yet or the listing fails.
   */
  counters?(keys?: ReadonlySet<string>): DnatCounter[];
}

/** The longest the agent goes without a full sync when intact() keeps answering true (kube-proxy: 1 h). */
export const FULL_SYNC_PERIOD_MS = 3_600_000;
