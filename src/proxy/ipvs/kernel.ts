// What the IPVS mode needs from the node's kernel, behind an interface: the real one
// (src/agent/ipvs-kernel.ts: IPVS over generic netlink, the dummy device over rtnetlink, the
// sysctls) and a fake that keeps the state in memory (tests). All of it acts on the node's netns.
import type { IpvsOp, ObservedService } from './diff.js';

export interface IpvsKernel {
  /** False when this netns has no IPVS (module not loaded): nothing of ours can be there. Never loads the module. */
  present(): boolean;
  /** Loads what the mode needs (ip_vs and the scheduler's module), creates the dummy device (up, no ARP) and sets the sysctls; idempotent. */
  prepare(scheduler: string): void;
  /** Every virtual service of the netns with its real servers and their connection counts. */
  listServices(): ObservedService[];
  /** One change; throws an error naming the service (and real server). */
  apply(op: IpvsOp): void;
  /**
   * Many changes in order (a sync's), batched where the kernel side can: every change is tried;
   * throws after all of them with the first failure (naming its object) and how many failed.
   */
  applyAll(ops: readonly IpvsOp[]): void;
  /** IPv4 addresses on the dummy device ([] when it does not exist). */
  boundAddresses(): string[];
  /** Adds these addresses (/32) to the dummy device (batched; one already there is fine). */
  bind(ips: readonly string[]): void;
  unbind(ips: readonly string[]): void;
  /** Deletes the dummy device (its addresses go with it); fine when it does not exist. */
  removeDevice(): void;
}

/**
 * Which virtual services podwire made, across restarts: NodePort ones sit on the node's own
 * addresses, so the dummy device's addresses alone cannot tell ours from someone else's.
 */
export interface IpvsOwnership {
  read(): string[];
  write(keys: readonly string[]): void;
}

/** An in-memory IpvsKernel (tests): IPVS semantics enough for the backend (EEXIST, ENOENT). */
export class FakeIpvsKernel implements IpvsKernel {
  readonly services = new Map<string, ObservedService>();
  readonly bound = new Set<string>();
  loaded = false;
  device = false;
  readonly log: string[] = [];
  failOn?: (op: IpvsOp) => boolean;

  present(): boolean {
    return this.loaded;
  }

  prepare(scheduler: string): void {
    this.loaded = true;
    this.device = true;
    this.log.push(`prepare ${scheduler}`);
  }

  listServices(): ObservedService[] {
    return [...this.services.values()].map((s) => ({ ...s, dests: s.dests.map((d) => ({ activeConns: 0, inactiveConns: 0, stats: { conns: 0, inBytes: 0 }, ...d })) }));
  }

  apply(op: IpvsOp): void {
    if (this.failOn?.(op)) throw new Error(`fake ipvs: ${op.op} ${op.service.key} failed`);
    this.log.push(`${op.op} ${op.service.key}${'dest' in op ? ` ${op.dest.address}:${op.dest.port} w${op.dest.weight}` : ''}`);
    const key = op.service.key;
    const s = this.services.get(key);
    switch (op.op) {
      case 'addService':
        if (s) throw new Error(`ipvs add service ${key}: File exists (EEXIST)`);
        this.services.set(key, { proto: op.service.proto, address: op.service.address, port: op.service.port, scheduler: op.service.scheduler, ...(op.service.persistenceSeconds ? { persistenceSeconds: op.service.persistenceSeconds } : {}), dests: [] });
        return;
      case 'editService':
        if (!s) throw new Error(`ipvs edit service ${key}: No such process (ESRCH)`);
        this.services.set(key, { ...s, scheduler: op.service.scheduler, ...(op.service.persistenceSeconds ? { persistenceSeconds: op.service.persistenceSeconds } : { persistenceSeconds: undefined }) });
        return;
      case 'delService':
        if (!s) throw new Error(`ipvs delete service ${key}: No such process (ESRCH)`);
        this.services.delete(key);
        return;
    }
    if (!s) throw new Error(`ipvs ${op.op} on ${key}: No such process (ESRCH)`);
    const i = s.dests.findIndex((d) => d.address === op.dest.address && d.port === op.dest.port);
    if (op.op === 'addDest') {
      if (i >= 0) throw new Error(`ipvs add destination ${key} -> ${op.dest.address}:${op.dest.port}: File exists (EEXIST)`);
      s.dests.push({ address: op.dest.address, port: op.dest.port, weight: op.dest.weight });
    } else if (i < 0) {
      throw new Error(`ipvs ${op.op} ${key} -> ${op.dest.address}:${op.dest.port}: No such file or directory (ENOENT)`);
    } else if (op.op === 'editDest') {
      s.dests[i] = { ...s.dests[i]!, weight: op.dest.weight };
    } else {
      s.dests.splice(i, 1);
    }
  }

  applyAll(ops: readonly IpvsOp[]): void {
    const errors: Error[] = [];
    for (const op of ops) {
      try {
        this.apply(op);
      } catch (e) {
        errors.push(e as Error);
      }
    }
    if (errors.length) throw batchError(errors, ops.length);
  }

  boundAddresses(): string[] {
    return this.device ? [...this.bound] : [];
  }

  bind(ips: readonly string[]): void {
    if (!this.device) throw new Error('fake ipvs: no device');
    for (const ip of ips) this.bound.add(ip);
  }

  unbind(ips: readonly string[]): void {
    for (const ip of ips) this.bound.delete(ip);
  }

  removeDevice(): void {
    this.device = false;
    this.bound.clear();
  }
}

/** The error of a batch with failures: the first one's message, and how many there were. */
export function batchError(errors: readonly Error[], total: number): Error {
  const more = errors.length > 1 ? ` (and ${errors.length - 1} more of the ${total} changes failed)` : '';
  const e = new Error(`${errors[0]!.message}${more}`);
  e.cause = errors[0];
  return e;
}
