// bench offload: issue 18's "GRO / checksum offload settings on the VXLAN device where they help
// (measure each, keep what helps)". One 2-node podwire vxlan lab (bench overlay's), one pod per
// node; for each setting, iperf3 pod→pod with the setting at the kernel's default and changed,
// alternating in place (no lab rebuilt between them, so the pairs differ only in the setting), N
// rounds; the verdict is the median of the per-round ratios changed/default. ethtool (Debian's
// package) changes the settings, inside the node netns only; each is put back after its rounds.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import type { FlagSpecs, Flags } from '../src/flags/flags.js';
import { listFlag, machine, table } from './util.js';
import { listNetns } from '../src/netns/netns.js';
import { iperf, podwire, type Pair } from './overlay.js';

export const summary = 'VXLAN and underlay offload settings (ethtool -K) A/B in place on a podwire vxlan lab: iperf3 Gbit/s default vs changed, median per-round ratio';

interface Setting {
  /** Where: the VXLAN device or the node's underlay interface. */
  dev: 'vxlan' | 'underlay';
  feature: string;
  /** The value the A/B changes it to (the other is the kernel's default here). */
  changed: 'on' | 'off';
  why: string;
}

export const SETTINGS: Record<string, Setting> = {
  'vxlan-tx-csum': { dev: 'vxlan', feature: 'tx-checksum-ip-generic', changed: 'off', why: 'flannel\'s well-known workaround (flannel#1279) turns it off on flannel.1' },
  'vxlan-udp-gro-fwd': { dev: 'vxlan', feature: 'rx-udp-gro-forwarding', changed: 'on', why: 'UDP GRO for forwarded traffic' },
  'underlay-gro': { dev: 'underlay', feature: 'generic-receive-offload', changed: 'on', why: 'GRO of the encapsulated packets as they arrive' },
  'underlay-gro-list': { dev: 'underlay', feature: 'rx-gro-list', changed: 'on', why: 'fraglist GRO' },
};

export const flags: FlagSpecs = {
  rounds: { type: 'int', default: 7, min: 1, max: 31, help: 'pairs of measurements per setting, order alternating (default 7)' },
  seconds: { type: 'int', default: 5, min: 1, max: 60, help: 'iperf3 duration of each measurement (default 5)' },
  settings: { type: 'string', default: Object.keys(SETTINGS).join(','), help: `settings to A/B (default all: ${Object.keys(SETTINGS).join(', ')})` },
};

export function check(f: Flags): void {
  listFlag(String(f.settings), Object.keys(SETTINGS), 'settings');
}

const ETHTOOL = ['/usr/sbin/ethtool', '/sbin/ethtool'].find((p) => fs.existsSync(p));
const VXLAN_DEV = 'podwire.1';

function ethtool(ns: string, args: string[]): string {
  return execFileSync('ip', ['netns', 'exec', ns, ETHTOOL!, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** The feature's current value on dev in ns ("on"/"off"), and whether the kernel lets it change. */
function feature(ns: string, dev: string, name: string): { value: 'on' | 'off'; fixed: boolean } {
  const line = ethtool(ns, ['-k', dev]).split('\n').find((l) => l.trim().startsWith(`${name}:`));
  if (!line) throw new Error(`${dev} in ${ns} has no feature ${name} (ethtool -k)`);
  return { value: /:\s*on/.test(line) ? 'on' : 'off', fixed: line.includes('[fixed]') };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

export async function run(f: Flags): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('needs root: it creates network namespaces (nothing outside them is touched)');
  if (!ETHTOOL) throw new Error('ethtool is missing: apt-get install ethtool (scripts/bootstrap installs it)');
  const names = listFlag(String(f.settings), Object.keys(SETTINGS), 'settings');
  const rounds = Number(f.rounds);
  const seconds = Number(f.seconds);
  const pair: Pair = await podwire('vxlan');
  const nodes = pair.lab.nodes.map((n) => ({ netns: n.netns, underlay: n.underlayIf }));
  const rows = [['setting', 'feature', 'default', 'changed', 'Gbit/s default', 'Gbit/s changed', 'changed/default (median)', 'per round']];
  try {
    for (const name of names) {
      const s = SETTINGS[name]!;
      const devOf = (n: (typeof nodes)[number]) => (s.dev === 'vxlan' ? VXLAN_DEV : n.underlay);
      const before = nodes.map((n) => feature(n.netns, devOf(n), s.feature));
      if (before.some((b) => b.fixed)) {
        rows.push([name, s.feature, before[0]!.value, '[fixed]', '', '', 'not changeable here', '']);
        continue;
      }
      const set = (value: 'on' | 'off') => {
        for (const n of nodes) ethtool(n.netns, ['-K', devOf(n), s.feature, value]);
      };
      const dflt: number[] = [];
      const changed: number[] = [];
      try {
        for (let r = 0; r < rounds; r++) {
          for (const c of r % 2 === 0 ? [false, true] : [true, false]) {
            set(c ? s.changed : before[0]!.value);
            (c ? changed : dflt).push(await iperf(pair, seconds, 1));
          }
        }
      } finally {
        nodes.forEach((n, i) => ethtool(n.netns, ['-K', devOf(n), s.feature, before[i]!.value]));
      }
      const ratios = changed.map((x, i) => x / dflt[i]!);
      process.stderr.write(`  ${name}: ratio ${median(ratios).toFixed(3)}\n`);
      rows.push([name, `${s.dev === 'vxlan' ? VXLAN_DEV : 'underlay'} ${s.feature}`, before[0]!.value, s.changed, median(dflt).toFixed(2), median(changed).toFixed(2), `${median(ratios).toFixed(3)}×`, ratios.map((x) => x.toFixed(2)).join(' ')]);
    }
  } finally {
    const leaks = pair.teardown();
    if (leaks.length) process.stderr.write(`bench offload: left behind: ${leaks.join(', ')}\n`);
  }
  const prefix = pair.lab.prefix;
  const left = listNetns().filter((n) => n.startsWith(prefix));
  process.stdout.write([
    `podwire bench offload — ethtool -K A/B in place on one 2-node podwire vxlan lab, iperf3 pod→pod ${seconds} s, ${rounds} round(s) per setting, order alternating`,
    `machine: ${machine()}; ${new Date().toISOString().slice(0, 10)}`,
    '',
    table(rows),
    '',
    ...names.map((n) => `${n}: ${SETTINGS[n]!.why}`),
    '',
    left.length ? `cleanup: LEFT BEHIND ${left.join(' ')}` : `cleanup: lab ${prefix} created and removed, no namespace of it left`,
  ].join('\n') + '\n');
}
