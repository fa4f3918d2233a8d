// Foreign rules in node1 for the service proxy end-to-end suite's check 8 (both modes): nft
// tables and chains (one inside inet podwire) and iptables chains and rules next to the proxy's,
// seeded before any service exists, and a snapshot of everything that is not the proxy's, taken
// before and after: creates, changes, deletes and restarts must leave it byte-identical.
import { inNetns } from './proxy-e2e.js';
import { ownedChain } from './proxy-e2e-iptables.js';

const FOREIGN_NFT = `add table ip other
add chain ip other post { type nat hook postrouting priority 100; policy accept; }
add rule ip other post ip saddr 198.51.100.0/24 counter masquerade
add set ip other blocked { type ipv4_addr; elements = { 198.51.100.10 }; }
add chain ip other forward-filter { type filter hook forward priority 0; policy accept; }
add rule ip other forward-filter ip daddr @blocked counter drop
add rule ip other forward-filter counter
add chain inet podwire zz-foreign
add rule inet podwire zz-foreign ip daddr 198.51.100.11 counter
`;

// Other chains in nat/filter/mangle and rules in the built-in chains next to ours (appended after
// our jumps, and some inserted before them), none of which touches the lab's traffic.
const FOREIGN_IPTABLES = [
  ['-t', 'nat', '-N', 'PWTEST-FOREIGN'],
  ['-t', 'nat', '-A', 'PWTEST-FOREIGN', '-p', 'tcp', '-d', '198.51.100.7/32', '--dport', '80', '-j', 'DNAT', '--to-destination', '198.51.100.8:8080'],
  ['-t', 'nat', '-A', 'PREROUTING', '-d', '198.51.100.7/32', '-j', 'PWTEST-FOREIGN'],
  ['-t', 'nat', '-I', 'PREROUTING', '1', '-d', '198.51.100.9/32', '-p', 'tcp', '--dport', '443', '-m', 'comment', '--comment', 'pwtest before ours', '-j', 'DNAT', '--to-destination', '198.51.100.8:8443'],
  ['-t', 'nat', '-A', 'OUTPUT', '-d', '198.51.100.7/32', '-j', 'PWTEST-FOREIGN'],
  ['-t', 'nat', '-A', 'POSTROUTING', '-s', '198.51.100.0/24', '-j', 'MASQUERADE'],
  ['-t', 'nat', '-N', 'KUBE-SERVICES'],
  ['-t', 'nat', '-A', 'KUBE-SERVICES', '-d', '198.51.100.20/32', '-p', 'tcp', '--dport', '443', '-m', 'comment', '--comment', 'another proxy\'s leftovers', '-j', 'RETURN'],
  ['-t', 'nat', '-N', 'PWTEST-EMPTY'],
  ['-t', 'filter', '-N', 'PWTEST-FILTER'],
  ['-t', 'filter', '-A', 'PWTEST-FILTER', '-s', '198.51.100.10/32', '-j', 'DROP'],
  ['-t', 'filter', '-A', 'FORWARD', '-j', 'PWTEST-FILTER'],
  ['-t', 'filter', '-I', 'OUTPUT', '1', '-d', '198.51.100.12/32', '-j', 'REJECT'],
  ['-t', 'filter', '-A', 'INPUT', '-s', '198.51.100.10/32', '-p', 'udp', '-j', 'DROP'],
  ['-t', 'mangle', '-A', 'PREROUTING', '-d', '198.51.100.13/32', '-j', 'MARK', '--set-mark', '0x1'],
];

export function seedForeign(netns: string): void {
  inNetns(netns, 'nft', ['-f', '-'], FOREIGN_NFT);
  for (const args of FOREIGN_IPTABLES) inNetns(netns, 'iptables', args);
}

const BUILTIN = /^(PREROUTING|INPUT|FORWARD|OUTPUT|POSTROUTING)$/;
const blankCounters = (s: string) => s.replace(/counter packets \d+ bytes \d+/g, 'counter').replace(/\[\d+:\d+\]/g, '[0:0]');

/**
 * `iptables-save -t TABLE` without the iptables proxy's chains, their rules and the jumps into
 * them from built-in chains: what the proxy must never change. Counters blanked, `#` lines dropped.
 */
export function foreignSave(netns: string, table: string): string {
  return blankCounters(inNetns(netns, 'iptables-save', ['-t', table]).split('\n').filter((l) => {
    if (l.startsWith('#')) return false;
    const decl = /^:(\S+) /.exec(l);
    if (decl) return !ownedChain(decl[1]!);
    const rule = /^-A (\S+) /.exec(l);
    if (!rule) return true;
    if (ownedChain(rule[1]!)) return false;
    const target = /(?:^| )-[jg] (\S+)/.exec(l)?.[1];
    return !(BUILTIN.test(rule[1]!) && target !== undefined && ownedChain(target));
  }).join('\n'));
}

/**
 * `nft -a list table ip TABLE` (the iptables-nft table) without the iptables proxy's chains and
 * the rules that jump to them: foreign chains and rules with their handles (a deleted and
 * re-created rule shows), counters blanked. '' when the table does not exist.
 */
export function foreignNftTable(netns: string, table: string): string {
  let text: string;
  try {
    text = inNetns(netns, 'nft', ['-a', 'list', 'table', 'ip', table]);
  } catch (e) {
    if (/No such file or directory/.test(String((e as { stderr?: string }).stderr ?? ''))) return '';
    throw e;
  }
  const out: string[] = [];
  let skipping = false;
  for (const line of text.split('\n')) {
    const chain = /^\tchain (\S+) \{/.exec(line);
    if (chain) skipping = ownedChain(chain[1]!);
    if (skipping) {
      if (line === '\t}') skipping = false;
      continue;
    }
    const jump = /\b(?:jump|goto) (\S+)/.exec(line);
    if (jump && ownedChain(jump[1]!)) continue;
    out.push(line);
  }
  // Chains are separated by blank lines: collapse what removing ours left behind.
  return blankCounters(out.join('\n').replace(/\n{2,}/g, '\n\n').replace(/\n\n(\})/g, '\n$1'));
}

/** Everything that is not podwire's service proxy (either mode's), with nft handles, counters blanked. */
export function foreignSnapshot(netns: string): Record<string, string> {
  const snap: Record<string, string> = {
    // Without the agent's DNS table, which it writes whole at every start (so it moves to the end of the list).
    'nft list tables': inNetns(netns, 'nft', ['list', 'tables']).split('\n').filter((l) => l.trim() !== 'table inet podwire-dns').join('\n'),
    'nft table ip other': blankCounters(inNetns(netns, 'nft', ['-a', 'list', 'table', 'ip', 'other'])),
    'chain inet podwire zz-foreign': blankCounters(inNetns(netns, 'nft', ['-a', 'list', 'chain', 'inet', 'podwire', 'zz-foreign'])),
    'chain inet podwire pod-masquerade': blankCounters(inNetns(netns, 'nft', ['-a', 'list', 'chain', 'inet', 'podwire', 'pod-masquerade'])),
  };
  for (const table of ['nat', 'filter', 'mangle']) {
    snap[`nft -a table ip ${table} without PODWIRE-*`] = foreignNftTable(netns, table);
    snap[`iptables-save -t ${table} without PODWIRE-*`] = foreignSave(netns, table);
  }
  return snap;
}

/** True when table inet podwire of the netns has this chain. */
export function hasNftChain(netns: string, chain: string): boolean {
  try {
    inNetns(netns, 'nft', ['list', 'chain', 'inet', 'podwire', chain]);
    return true;
  } catch {
    return false;
  }
}
