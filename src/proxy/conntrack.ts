// Stale UDP conntrack entries, cleared as kube-proxy does: a UDP "connection" to a service stays
// pinned (DNATed) to the endpoint it first hit for as long as packets keep flowing, so when that
// endpoint goes away its entries must be deleted or the client keeps sending into the void. And
// when a UDP service gains endpoints, entries created while it had none (not DNATed) must go too.
import type { CommandRunner } from '../exec/runner.js';
import type { RemovedUdpEndpoint } from './changes.js';

export interface ConntrackCommand {
  args: string[];
  why: string;
}

/** The conntrack -D invocations for the removed endpoints (pure). */
export function conntrackDeletes(removed: readonly RemovedUdpEndpoint[], newlyActive: readonly { key: string; ips: string[] }[] = []): ConntrackCommand[] {
  const out: ConntrackCommand[] = [];
  const seen = new Set<string>();
  const add = (args: string[], why: string) => {
    const k = args.join(' ');
    if (seen.has(k)) return;
    seen.add(k);
    out.push({ args, why });
  };
  for (const r of removed) {
    for (const ip of [...r.clusterIPs, ...r.externalIPs, ...r.loadBalancerIPs]) {
      add(['-D', '-p', 'udp', '--orig-dst', ip, '--dst-nat', r.endpointIp], `${r.key}: endpoint ${r.endpointIp}:${r.endpointPort} removed`);
    }
    if (r.nodePort) add(['-D', '-p', 'udp', '--orig-port-dst', String(r.nodePort), '--dst-nat', r.endpointIp], `${r.key}: endpoint ${r.endpointIp} removed (NodePort ${r.nodePort})`);
  }
  for (const a of newlyActive) {
    for (const ip of a.ips) add(['-D', '-p', 'udp', '--orig-dst', ip], `${a.key}: has endpoints again; entries made while it had none are stale`);
  }
  return out;
}

/**
 * Runs the deletions; conntrack exits 1 when nothing matched ("0 flow entries have been deleted"),
 * which is the common, fine case. Returns the failures (never throws: a stale entry is worth a
 * log line, not a failed sync).
 */
export function runConntrackDeletes(runner: CommandRunner, cmds: readonly ConntrackCommand[]): string[] {
  const failures: string[] = [];
  for (const c of cmds) {
    try {
      const r = runner.run('conntrack', c.args);
      if (r.code !== 0 && !/0 flow entries have been deleted/.test(r.stderr)) failures.push(`conntrack ${c.args.join(' ')}: exit ${r.code}: ${r.stderr.trim()}`);
    } catch (e) {
      failures.push(`conntrack ${c.args.join(' ')}: ${(e as Error).message}`);
    }
  }
  return failures;
}
