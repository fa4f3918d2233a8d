// The upstreams of a node: the nameserver lines of its resolv.conf text (pure; the caller reads
// the file). Lines it cannot use are reported, never guessed at.
import { canonicalIp, tryParseIp } from '../net/index.js';

export interface Upstream {
  host: string;
  port: number;
}

export interface ResolvConf {
  nameservers: Upstream[];
  search: string[];
  /** What was skipped, one line each: `line 3: nameserver "fe80::1%eth0" is not an IP address`. */
  skipped: string[];
}

export function parseResolvConf(text: string): ResolvConf {
  const out: ResolvConf = { nameservers: [], search: [], skipped: [] };
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/[#;].*$/, '').trim();
    if (!line) return;
    const [keyword, ...args] = line.split(/\s+/);
    if (keyword === 'nameserver') {
      const ip = args.length === 1 ? tryParseIp(args[0]) : undefined;
      if (ip) out.nameservers.push({ host: canonicalIp(args[0]), port: 53 });
      else out.skipped.push(`line ${i + 1}: nameserver "${args.join(' ')}" is not one IP address (zones like %eth0 are not supported)`);
    } else if (keyword === 'search' || keyword === 'domain') {
      out.search = args; // the last search/domain line wins, as in glibc
    }
  });
  return out;
}

/** `10.0.0.2`, `10.0.0.2:5353`, `[fd00::2]:53` or `fd00::2` → an upstream; undefined if none of them. */
export function parseUpstream(text: string): Upstream | undefined {
  const bracketed = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(text);
  const v4port = /^([^:]+):(\d{1,5})$/.exec(text);
  const [host, port] = bracketed ? [bracketed[1], bracketed[2] ?? '53'] : v4port ? [v4port[1], v4port[2]] : [text, '53'];
  const n = Number(port);
  if (!tryParseIp(host) || n < 1 || n > 65535) return undefined;
  return { host: canonicalIp(host), port: n };
}
