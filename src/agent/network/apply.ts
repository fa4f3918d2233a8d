// applySteps(): run plan() steps through a netlink Handle. Every step is tried even when an earlier
// one failed (a broken peer must not keep the others unwired), except steps on a device whose
// creation failed: those are reported as skipped, not sent to fail with ENODEV one by one.
// Idempotence: a delete finding nothing and an add finding the object already there count as done,
// so a plan computed from a slightly stale observation still converges.
import type { Handle } from '../../netlink/handle.js';
import type { Link } from '../../netlink/link.js';
import { NUD_PERMANENT } from '../../netlink/constants.js';
import { describeStep } from './plan.js';
import { ROUTE_PROTOCOL, type Step, type UnderlayInfo } from './types.js';

export interface ApplyError {
  step: Step;
  /** describeStep(step), for logs. */
  text: string;
  /** A NetlinkError (errno, operation, object) when the kernel refused the step. */
  error: Error;
  /** errno name (EEXIST, ENODEV, …) when the kernel refused it. */
  code?: string;
}

export interface ApplyResult {
  applied: number;
  errors: ApplyError[];
}

/** Errors meaning "already gone" for each delete operation. */
const GONE: Partial<Record<Step['op'], string[]>> = {
  linkDel: ['ENODEV'],
  addrDel: ['EADDRNOTAVAIL', 'ENODEV'],
  routeDel: ['ESRCH'],
  neighDel: ['ENOENT', 'ENODEV'],
  fdbDel: ['ENOENT', 'ENODEV'],
};
/** Errors meaning "already there" for adds whose object is fully given by the step. */
const THERE: Partial<Record<Step['op'], string[]>> = { addrAdd: ['EEXIST'], fdbAppend: ['EEXIST'] };

const codeOf = (err: unknown): string | undefined => (err as { code?: unknown }).code as string | undefined;

class StepError extends Error {
  constructor(message: string, readonly code?: string) {
    super(message);
  }
}

/** The device a step needs to exist, if any. */
function deviceOf(step: Step): string | undefined {
  switch (step.op) {
    case 'routeReplace':
      return step.route.ifname;
    case 'linkSet':
      return step.name;
    case 'addrAdd': case 'addrDel': case 'neighReplace': case 'neighDel': case 'fdbAppend': case 'fdbDel':
      return step.ifname;
    default:
      return undefined;
  }
}

class Applier {
  private readonly indexes = new Map<string, number>();
  constructor(private readonly h: Handle, private readonly underlay?: Pick<UnderlayInfo, 'ifname' | 'ifindex'>) {}

  private index(name: string): number {
    let index = this.indexes.get(name);
    if (index === undefined) {
      index = this.underlay?.ifname === name ? this.underlay.ifindex : this.h.ifindex(name);
      this.indexes.set(name, index);
    }
    return index;
  }

  run(step: Step): void {
    const h = this.h;
    switch (step.op) {
      case 'bridgeAdd': return this.bridgeAdd(step);
      case 'vxlanAdd': return this.vxlanAdd(step);
      case 'linkDel':
        this.indexes.delete(step.name);
        return h.linkDel(step.name);
      case 'linkSet': {
        const { mtu, mac, up } = step;
        return h.linkSet(this.index(step.name), { ...(mtu !== undefined && { mtu }), ...(mac !== undefined && { mac }), ...(up !== undefined && { up }) });
      }
      case 'addrAdd': return h.addrAdd({ ifindex: this.index(step.ifname), cidr: step.cidr });
      case 'addrDel': return h.addrDel({ ifindex: this.index(step.ifname), cidr: step.cidr });
      case 'routeReplace': {
        const r = step.route;
        return h.routeReplace({ dst: r.dst, gateway: r.gateway, ifindex: this.index(r.ifname), onlink: r.onlink, protocol: ROUTE_PROTOCOL });
      }
      // The protocol makes the kernel match only our route to this dst, never someone else's.
      case 'routeDel': return h.routeDel({ dst: step.dst, protocol: ROUTE_PROTOCOL });
      case 'neighReplace': return h.neighReplace({ ifindex: this.index(step.ifname), ip: step.ip, mac: step.mac, state: NUD_PERMANENT });
      case 'neighDel': return h.neighDel({ ifindex: this.index(step.ifname), ip: step.ip });
      case 'fdbAppend': return h.fdbAppend({ ifindex: this.index(step.ifname), mac: step.mac, dst: step.dst });
      case 'fdbDel': return h.fdbDel({ ifindex: this.index(step.ifname), mac: step.mac, dst: step.dst });
    }
  }

  /** EEXIST: someone made cni0 between observe and apply; fine if it is a bridge (then fix MTU, up). */
  private bridgeAdd(step: Extract<Step, { op: 'bridgeAdd' }>): void {
    this.indexes.delete(step.name);
    try {
      this.h.linkAdd({ kind: 'bridge', name: step.name, mtu: step.mtu, up: true });
    } catch (err) {
      if (codeOf(err) !== 'EEXIST') throw err;
      const link = this.h.linkGet(step.name);
      if (link.kind !== 'bridge') throw new StepError(`${step.name} exists but is a ${link.kind ?? 'device of unknown kind'}, not a bridge`, 'EEXIST');
      this.h.linkSet(link.index, { mtu: step.mtu, up: true });
    }
  }

  /** EEXIST: fine only if the device there has every immutable attribute we want. */
  private vxlanAdd(step: Extract<Step, { op: 'vxlanAdd' }>): void {
    this.indexes.delete(step.name);
    const devIndex = this.index(step.devIfname);
    try {
      this.h.linkAdd({
        kind: 'vxlan', name: step.name, vni: step.vni, port: step.port, local: step.local, devIndex, learning: false,
        mtu: step.mtu, mac: step.mac, up: true,
      });
    } catch (err) {
      if (codeOf(err) !== 'EEXIST') throw err;
      const link = this.h.linkGet(step.name);
      if (!vxlanMatches(link, step, devIndex)) throw new StepError(`${step.name} exists with other attributes (${JSON.stringify(link.vxlan ?? { kind: link.kind })})`, 'EEXIST');
      this.h.linkSet(link.index, { mtu: step.mtu, mac: step.mac, up: true });
    }
  }
}

function vxlanMatches(link: Link, step: Extract<Step, { op: 'vxlanAdd' }>, devIndex: number): boolean {
  const vx = link.vxlan;
  return link.kind === 'vxlan' && !!vx && vx.vni === step.vni && vx.port === step.port && vx.local === step.local &&
    vx.devIndex === devIndex && !vx.learning;
}

export function applySteps(h: Handle, steps: Step[], underlay?: Pick<UnderlayInfo, 'ifname' | 'ifindex'>): ApplyResult {
  const applier = new Applier(h, underlay);
  const result: ApplyResult = { applied: 0, errors: [] };
  const failedDevices = new Set<string>();
  for (const step of steps) {
    const text = describeStep(step);
    const device = deviceOf(step);
    if (device !== undefined && failedDevices.has(device)) {
      result.errors.push({ step, text, error: new Error(`skipped: ${device} could not be created`) });
      continue;
    }
    try {
      applier.run(step);
      result.applied++;
    } catch (err) {
      const code = codeOf(err);
      if (code !== undefined && (GONE[step.op]?.includes(code) || THERE[step.op]?.includes(code))) {
        result.applied++;
        continue;
      }
      if (step.op === 'bridgeAdd' || step.op === 'vxlanAdd') failedDevices.add(step.name);
      const error = err instanceof Error ? err : new Error(String(err));
      result.errors.push({ step, text, error, ...(code !== undefined && { code }) });
    }
  }
  return result;
}
