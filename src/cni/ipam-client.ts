// IPAM as the plugin sees it: the built-in allocator (src/ipam, host-local's options) or a delegated
// IPAM plugin from CNI_PATH, behind one interface so ADD/DEL/CHECK/GC/STATUS do not care which.
import { FileIpam } from '../ipam/ipam.js';
import { IpamError, type Owner } from '../ipam/types.js';
import type { NetConf } from './config.js';
import { execPlugin, findPlugin } from './delegate.js';
import type { CniEnv } from './env.js';
import { CniError, CNI_ERR } from './errors.js';
import { parsePrevResult, type ResultIp, type ResultRoute } from './result.js';

export interface IpamResult {
  ips: ResultIp[];
  routes: ResultRoute[];
  dns: Record<string, unknown>;
}

export interface IpamClient {
  add(): IpamResult;
  /** Releases; returns the addresses (plain IPs) released when known. */
  del(): string[];
  /** Throws a CniError when the owner does not hold `ips`. */
  check(ips: string[]): void;
  gc(valid: Owner[]): Owner[];
  /** The owners this network's IPAM holds that are not in `valid` (what gc would release); [] when unknown. */
  stale(valid: Owner[]): Owner[];
  /** Throws CniError 50 when no address is free. */
  status(): void;
}

function ipamError(err: unknown, network: string): CniError {
  if (!(err instanceof IpamError)) return err instanceof CniError ? err : new CniError(CNI_ERR.IO, `IPAM for network ${network}: ${(err as Error).message}`);
  switch (err.kind) {
    case 'exhausted':
      return new CniError(CNI_ERR.IPAM_EXHAUSTED, `no free IP address in network ${network}: ${err.message}`, 'delete unused pods (or run CNI GC), or widen the range');
    case 'busy':
      return new CniError(CNI_ERR.TRY_AGAIN_LATER, `IPAM store of network ${network} is busy: ${err.message}`, 'retry');
    case 'invalid':
    case 'unavailable':
      return new CniError(CNI_ERR.INVALID_CONFIG, `IPAM for network ${network}: ${err.message}`);
    default:
      return new CniError(CNI_ERR.IO, `IPAM store of network ${network}: ${err.message}`, 'check the ipam dataDir (disk full? permissions?)');
  }
}

function builtin(conf: NetConf, env: CniEnv): IpamClient {
  const ipam = new FileIpam(conf.ipam.dataDir);
  const owner: Owner = { containerId: env.containerId, ifname: env.ifname };
  const wrap = <T>(fn: () => T): T => {
    try {
      return fn();
    } catch (err) {
      throw ipamError(err, conf.name);
    }
  };
  return {
    add: () => wrap(() => {
      const allocs = ipam.allocate(conf.name, owner, conf.ipam.ranges, conf.requestedIps);
      return {
        ips: allocs.map((a) => ({ address: a.address, ...(a.gateway ? { gateway: a.gateway } : {}) })),
        routes: conf.ipam.routes.map((r) => ({ ...r })),
        dns: {},
      };
    }),
    del: () => wrap(() => ipam.release(conf.name, owner).map((r) => r.ip)),
    check: (ips) => wrap(() => {
      const held = new Set(ipam.list(conf.name).filter((r) => r.containerId === owner.containerId && r.ifname === owner.ifname).map((r) => r.ip));
      for (const ip of ips) {
        if (!held.has(ip)) throw new CniError(CNI_ERR.CHECK_FAILED, `IPAM: ${ip} is not reserved for container ${owner.containerId} ${owner.ifname} in network ${conf.name}`);
      }
    }),
    gc: (valid) => wrap(() => ipam.gc(conf.name, valid)),
    stale: (valid) => wrap(() => {
      const keep = new Set(valid.map((o) => `${o.containerId}/${o.ifname}`));
      const seen = new Map<string, Owner>();
      for (const r of ipam.list(conf.name)) {
        const k = `${r.containerId}/${r.ifname}`;
        // A malformed record names no owner (empty fields): it has no veth to find.
        if (r.containerId && r.ifname && !keep.has(k)) seen.set(k, { containerId: r.containerId, ifname: r.ifname });
      }
      return [...seen.values()];
    }),
    status: () => wrap(() => {
      const free = ipam.free(conf.name, conf.ipam.ranges);
      const empty = free.findIndex((n) => n === 0);
      if (empty >= 0) {
        throw new CniError(CNI_ERR.NOT_AVAILABLE, `network ${conf.name} has no free IP address in range set ${empty}`, 'delete unused pods, run CNI GC, or widen the range');
      }
    }),
  };
}

function delegated(conf: NetConf, env: CniEnv): IpamClient {
  const type = conf.ipam.type;
  findPlugin(type, env.path); // a missing delegate is a config error, found before anything is done
  const run = (command: string, extra: Record<string, unknown> = {}) => execPlugin(type, env, command, { ...conf.raw, ...extra });
  const delegateVersions = (): string[] => {
    const v = execPlugin(type, env, 'VERSION', { cniVersion: conf.cniVersion }) as { supportedVersions?: string[] } | undefined;
    return v?.supportedVersions ?? [];
  };
  return {
    add: () => {
      const r = parsePrevResult(run('ADD'));
      return { ips: r.ips.map(({ interface: _, ...ip }) => ip), routes: r.routes, dns: r.dns };
    },
    del: () => {
      run('DEL');
      return [];
    },
    check: () => {
      // The reference IPAM plugins check only when the config version allows CHECK (0.4.0+).
      if (conf.cniVersion !== '0.3.0' && conf.cniVersion !== '0.3.1') run('CHECK');
    },
    gc: (valid) => {
      if (delegateVersions().includes('1.1.0')) {
        run('GC', { 'cni.dev/valid-attachments': valid.map((a) => ({ containerID: a.containerId, ifname: a.ifname })) });
      }
      return [];
    },
    // A delegate's state is its own: which attachments it holds is not known here.
    stale: () => [],
    status: () => {
      if (delegateVersions().includes('1.1.0')) run('STATUS');
    },
  };
}

export function ipamClient(conf: NetConf, env: CniEnv): IpamClient {
  return conf.ipam.type === 'podwire' ? builtin(conf, env) : delegated(conf, env);
}
