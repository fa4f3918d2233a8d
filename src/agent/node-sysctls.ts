// The kernel settings every node needs whatever the backend and proxy mode, set in the agent's
// netns (/proc/sys/net is per-netns) at start, before the first sync:
//
// - net.ipv4.ip_forward=1: pods are routed through the node.
// - br_netfilter with net.bridge.bridge-nf-call-iptables=1 (and -ip6tables): a pod that reaches a
//   service whose chosen endpoint is another pod on the same node sends through the node (DNAT
//   to the endpoint, routed back out cni0), but the endpoint's reply is addressed to a pod on the
//   same bridge and is bridged straight to it. Without br_netfilter the reply never meets the
//   connection's conntrack entry, so it is not un-DNATed: the client gets an answer from the
//   endpoint's IP instead of the ClusterIP and resets. It is what kubeadm's preflight requires
//   and what flannel and kube-proxy (every mode) rely on. The settings are per-netns since Linux
//   5.3 and default to 1 once the module is loaded; the module is loaded only when this netns has
//   no /proc/sys/net/bridge (a built-in or loaded module is never touched).
import fs from 'node:fs';
import path from 'node:path';
import type { CommandRunner } from '../exec/runner.js';

export const BRIDGE_NF_KEYS = ['net/bridge/bridge-nf-call-iptables', 'net/bridge/bridge-nf-call-ip6tables'] as const;

/** What `prepareNodeSysctls` could not do: each is logged as a warning (doctor's br-netfilter check reports it). */
export type NodeSysctlWarning = { key: string; message: string };

function read(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/**
 * Sets ip_forward (throws when it cannot: the node forwards nothing without it) and the bridge
 * netfilter calls (a warning each when br_netfilter is missing or a value cannot be written:
 * only same-node service traffic suffers, the rest of the network works).
 */
export function prepareNodeSysctls(runner: CommandRunner, procSys = '/proc/sys'): NodeSysctlWarning[] {
  const fwd = path.join(procSys, 'net/ipv4/ip_forward');
  if (read(fwd) !== '1') fs.writeFileSync(fwd, '1');
  const warnings: NodeSysctlWarning[] = [];
  const first = path.join(procSys, BRIDGE_NF_KEYS[0]);
  if (read(first) === undefined) {
    let why: string;
    try {
      const r = runner.run('modprobe', ['br_netfilter']);
      why = r.code === 0 ? 'loaded, but this netns still has no net.bridge sysctls' : `modprobe br_netfilter exited ${r.code}: ${r.stderr.trim()}`;
    } catch (e) {
      why = (e as Error).message;
    }
    if (read(first) === undefined) {
      return [{ key: 'br_netfilter', message: `br_netfilter is not available (${why}): a pod reaching a service whose endpoint is a pod on the same node gets replies that skip the un-DNAT and its connections fail; load br_netfilter (modprobe br_netfilter, or add it to /etc/modules-load.d) and restart podwire-agent` }];
    }
  }
  for (const key of BRIDGE_NF_KEYS) {
    const file = path.join(procSys, key);
    const now = read(file);
    if (now === undefined || now === '1') continue; // -ip6tables is missing without IPv6
    try {
      fs.writeFileSync(file, '1');
    } catch (e) {
      warnings.push({ key, message: `cannot set ${key.replace(/\//g, '.')}=1 (it is ${now}): ${(e as Error).message}; same-node service traffic fails without it` });
    }
  }
  return warnings;
}
