// The IPVS mode's kernel side (src/proxy/ipvs/kernel.ts's IpvsKernel) in the agent's netns: IPVS
// over generic netlink (src/netlink IpvsClient), the dummy device and its addresses over
// rtnetlink (the agent's Handle), the modules through modprobe and the sysctls through
// /proc/sys/net (this process's netns: the agent runs inside its node's).
import fs from 'node:fs';
import os from 'node:os';
import type { CommandRunner } from '../exec/runner.js';
import type { Handle } from '../netlink/handle.js';
import { IpvsClient, type IpvsChange } from '../netlink/ipvs-client.js';
import type { IpvsOp, ObservedService } from '../proxy/ipvs/diff.js';
import { batchError, type IpvsKernel, type IpvsOwnership } from '../proxy/ipvs/kernel.js';
import { IPVS_DEVICE } from '../proxy/ipvs/plan.js';

/**
 * The sysctls the mode sets, as kube-proxy's IPVS mode does, and why (`podwire doctor` checks them):
 * - vs/conntrack=1: IPVS keeps conntrack entries for what it forwards, so nftables can
 *   masquerade it (without it no SNAT: hairpin, NodePort and node→service replies are lost);
 * - vs/expire_nodest_conn=1: a connection whose real server was deleted is dropped at its next
 *   packet instead of black-holing until its timeout;
 * - vs/expire_quiescent_template=1: persistence (ClientIP affinity) templates to a weight-0
 *   real server expire, so affine clients move off a draining endpoint;
 * - vs/conn_reuse_mode: 0 only on kernels before 5.9 (the 1 s delay of kubernetes#70747 with
 *   mode 1 there); from 5.9 the kernel's default 1 is right (mode 0 sends reused ports to
 *   removed endpoints, kubernetes#81775);
 * - conf/all/arp_ignore=1, arp_announce=2: the node answers ARP only for addresses of the
 *   interface asked, and never announces the dummy's service IPs (kube-proxy's strictARP).
 */
export function ipvsSysctls(release = os.release()): Record<string, string> {
  const out: Record<string, string> = {
    'net/ipv4/vs/conntrack': '1',
    'net/ipv4/vs/expire_nodest_conn': '1',
    'net/ipv4/vs/expire_quiescent_template': '1',
    'net/ipv4/conf/all/arp_ignore': '1',
    'net/ipv4/conf/all/arp_announce': '2',
  };
  if (kernelBefore(release, 5, 9)) out['net/ipv4/vs/conn_reuse_mode'] = '0';
  return out;
}

export function kernelBefore(release: string, major: number, minor: number): boolean {
  const m = /^(\d+)\.(\d+)/.exec(release);
  if (!m) return false;
  const [a, b] = [Number(m[1]), Number(m[2])];
  return a < major || (a === major && b < minor);
}

export class RealIpvsKernel implements IpvsKernel {
  private client?: IpvsClient;

  constructor(
    private readonly handle: Handle,
    private readonly runner: CommandRunner,
    private readonly procSys = '/proc/sys',
  ) {}

  present(): boolean {
    return fs.existsSync('/proc/net/ip_vs');
  }

  prepare(scheduler: string): void {
    for (const mod of ['ip_vs', `ip_vs_${scheduler}`]) {
      if (mod === 'ip_vs' && this.present()) continue;
      const r = this.runner.run('modprobe', [mod]);
      if (r.code !== 0 && !(mod === 'ip_vs' && this.present())) {
        throw new Error(`ipvs: modprobe ${mod} failed (exit ${r.code}): ${r.stderr.trim()}: this kernel needs IPVS (CONFIG_IP_VS) and the ${scheduler} scheduler; use --proxy-mode nftables otherwise`);
      }
    }
    if (!this.handle.linkFind(IPVS_DEVICE)) this.handle.linkAdd({ kind: 'dummy', name: IPVS_DEVICE, up: true });
    else this.handle.linkSet(IPVS_DEVICE, { up: true });
    for (const [key, value] of Object.entries(ipvsSysctls())) {
      const file = `${this.procSys}/${key}`;
      try {
        if (fs.readFileSync(file, 'utf8').trim() !== value) fs.writeFileSync(file, value);
      } catch (e) {
        throw new Error(`ipvs: cannot set ${key.replace(/\//g, '.')}=${value}: ${(e as Error).message}`);
      }
    }
  }

  listServices(): ObservedService[] {
    if (!this.present()) return [];
    const c = this.ipvs();
    const out: ObservedService[] = [];
    for (const s of c.listServices()) {
      if (s.fwmark !== undefined || s.family !== 4) continue;
      out.push({
        proto: s.protocol, address: s.address, port: s.port, scheduler: s.scheduler,
        ...(s.flags.persistent ? { persistenceSeconds: s.timeout } : {}),
        dests: c.listDestinations({ protocol: s.protocol, address: s.address, port: s.port }).map((d) => ({
          address: d.address, port: d.port, weight: d.weight, activeConns: d.activeConns, inactiveConns: d.inactiveConns,
          ...((d.stats64 ?? d.stats) ? { stats: { conns: (d.stats64 ?? d.stats)!.conns, inBytes: (d.stats64 ?? d.stats)!.inBytes } } : {}),
        })),
      });
    }
    return out;
  }

  apply(op: IpvsOp): void {
    this.applyAll([op]);
  }

  /** Batched (IpvsClient.applyBatch): at 10,000 services × 5 a full sync is 60,000 changes. */
  applyAll(ops: readonly IpvsOp[]): void {
    const errors = this.ipvs().applyBatch(ops.map(toChange)).filter((e): e is NonNullable<typeof e> => e !== undefined);
    if (errors.length === 1 && ops.length === 1) throw errors[0];
    if (errors.length) throw batchError(errors, ops.length);
  }

  boundAddresses(): string[] {
    const link = this.handle.linkFind(IPVS_DEVICE);
    if (!link) return [];
    return this.handle.addrList({ ifindex: link.index, family: 4 }).map((a) => a.local);
  }

  bind(ips: readonly string[]): void {
    if (!ips.length) return;
    const ifindex = this.device();
    this.handle.addrBatch({ replace: ips.map((ip) => ({ ifindex, cidr: `${ip}/32`, broadcast: 'none' })) });
  }

  unbind(ips: readonly string[]): void {
    if (!ips.length) return;
    const ifindex = this.device();
    this.handle.addrBatch({ del: ips.map((ip) => ({ ifindex, cidr: `${ip}/32` })) });
  }

  removeDevice(): void {
    if (this.handle.linkFind(IPVS_DEVICE)) this.handle.linkDel(IPVS_DEVICE);
  }

  close(): void {
    this.client?.close();
    this.client = undefined;
  }

  private device(): number {
    const link = this.handle.linkFind(IPVS_DEVICE);
    if (!link) throw new Error(`ipvs: device ${IPVS_DEVICE} is missing (deleted behind the agent's back?): the next full sync recreates it`);
    return link.index;
  }

  private ipvs(): IpvsClient {
    this.client ??= IpvsClient.open();
    return this.client;
  }
}

/** A plan's change as the IPVS client's (masquerading forward: the real servers are pods). */
function toChange(op: IpvsOp): IpvsChange {
  const key = { protocol: op.service.proto, address: op.service.address, port: op.service.port };
  switch (op.op) {
    case 'addService':
    case 'editService': {
      const s = op.service;
      const spec = {
        ...key, scheduler: s.scheduler,
        ...(s.persistenceSeconds !== undefined ? { flags: { persistent: true }, timeout: s.persistenceSeconds, netmask: 32 } : { flags: { persistent: false } }),
      };
      return { op: op.op, spec };
    }
    case 'delService': return { op: 'delService', key };
    case 'addDest': return { op: 'addDestination', key, dest: { address: op.dest.address, port: op.dest.port, forward: 'masq', weight: op.dest.weight } };
    case 'editDest': return { op: 'editDestination', key, dest: { address: op.dest.address, port: op.dest.port, forward: 'masq', weight: op.dest.weight } };
    case 'delDest': return { op: 'delDestination', key, dest: { address: op.dest.address, port: op.dest.port } };
  }
}

/** The ownership record: one JSON file in the agent's run dir, written atomically. */
export function fileOwnership(file: string): IpvsOwnership {
  return {
    read() {
      try {
        const v = JSON.parse(fs.readFileSync(file, 'utf8')) as unknown;
        return Array.isArray(v) ? v.filter((k): k is string => typeof k === 'string') : [];
      } catch {
        return [];
      }
    },
    write(keys) {
      const tmp = `${file}.tmp`;
      fs.writeFileSync(tmp, JSON.stringify(keys));
      fs.renameSync(tmp, file);
    },
  };
}
