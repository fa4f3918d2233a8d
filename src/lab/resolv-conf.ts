// Each lab pod's /etc/resolv.conf: written to /etc/netns/<pod netns>/resolv.conf, which
// `ip netns exec` (and `podwire lab exec`) bind-mounts over /etc/resolv.conf, as a runtime gives a
// container its own file. The content is the CNI result's dns in the format containerd writes for
// the kubelet's DNS config: search, nameserver(s), options.
import fs from 'node:fs';
import path from 'node:path';
import { LAB_PREFIX_RE } from './names.js';

export const NETNS_ETC_DIR = '/etc/netns';

export interface ResolvConfDns {
  nameservers?: string[];
  search?: string[];
  options?: string[];
}

/** The file's text (pure); no nameserver is an error: such a file would send the pod's lookups nowhere it expects. */
export function resolvConfText(dns: ResolvConfDns): string {
  const nameservers = dns.nameservers ?? [];
  if (nameservers.length === 0) throw new Error('the pod\'s DNS settings have no nameserver');
  const lines: string[] = [];
  if (dns.search?.length) lines.push(`search ${dns.search.join(' ')}`);
  for (const ns of nameservers) lines.push(`nameserver ${ns}`);
  if (dns.options?.length) lines.push(`options ${dns.options.join(' ')}`);
  return lines.join('\n') + '\n';
}

/** A lab's own /etc/netns entry: a netns name with a lab prefix, nothing else (no "/", no ".."). */
function ownDir(netns: string, prefix?: string): string {
  const m = /^pw-[0-9a-z]{1,12}-/.exec(netns);
  if (!m || !/^[A-Za-z0-9_.-]+$/.test(netns) || (prefix !== undefined && !netns.startsWith(prefix))) {
    throw new Error(`/etc/netns/${netns}: not a lab netns name (pw-XXXXXX-...)`);
  }
  return path.join(NETNS_ETC_DIR, netns);
}

/** Writes /etc/netns/NETNS/resolv.conf (0644, atomically). Returns the file. */
export function writePodResolvConf(netns: string, text: string): string {
  const dir = ownDir(netns);
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  const file = path.join(dir, 'resolv.conf');
  const tmp = `${file}.podwire-tmp`;
  fs.writeFileSync(tmp, text, { mode: 0o644 });
  fs.renameSync(tmp, file);
  return file;
}

/** The lab's /etc/netns/PREFIX* directories (only names with the lab's own prefix). */
export function labNetnsEtcDirs(prefix: string): string[] {
  if (!LAB_PREFIX_RE.test(prefix)) throw new Error(`invalid lab prefix ${JSON.stringify(prefix)}`);
  let names: string[];
  try {
    names = fs.readdirSync(NETNS_ETC_DIR);
  } catch {
    return [];
  }
  return names.filter((n) => n.startsWith(prefix) && /^[A-Za-z0-9_.-]+$/.test(n)).map((n) => ownDir(n, prefix));
}

/** Removes the lab's /etc/netns/PREFIX* directories; /etc/netns itself and others' entries stay. */
export function removeLabNetnsEtc(prefix: string): void {
  for (const dir of labNetnsEtcDirs(prefix)) fs.rmSync(dir, { recursive: true, force: true });
}
