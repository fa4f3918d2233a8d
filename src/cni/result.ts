// CNI results (SPEC.md "Success"): one internal shape (1.x) converted to the version the config
// asks for. 0.3.x/0.4.0 results carry ips[].version; 1.x results do not. prevResult of any of these
// versions is read back into the internal shape.
import { tryParseCidr } from '../net/cidr.js';
import { isIp } from '../net/ip.js';
import { CniError, CNI_ERR } from './errors.js';

export interface ResultInterface {
  name: string;
  mac?: string;
  mtu?: number;
  sandbox?: string;
}

export interface ResultIp {
  address: string; // CIDR
  gateway?: string;
  interface?: number;
}

export interface ResultRoute {
  dst: string;
  gw?: string;
}

export interface Result {
  interfaces: ResultInterface[];
  ips: ResultIp[];
  routes: ResultRoute[];
  dns: Record<string, unknown>;
}

const bad = (msg: string) => new CniError(CNI_ERR.DECODE, `invalid prevResult: ${msg}`, 'the runtime must pass the cached ADD result as prevResult');

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function list(o: Record<string, unknown>, key: string): Record<string, unknown>[] {
  const v = o[key];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || !v.every(isObject)) throw bad(`${key} must be a list of objects`);
  return v as Record<string, unknown>[];
}

function str(o: Record<string, unknown>, key: string, where: string, required = false): string | undefined {
  const v = o[key];
  if (v === undefined) {
    if (required) throw bad(`${where}.${key} is missing`);
    return undefined;
  }
  if (typeof v !== 'string') throw bad(`${where}.${key} must be a string`);
  return v;
}

function cidr(text: string, where: string): string {
  if (tryParseCidr(text) === undefined) throw bad(`${where} ${JSON.stringify(text)} is not a CIDR`);
  return text;
}

/** Any supported version's result → the internal shape (validated). */
export function parsePrevResult(v: unknown): Result {
  if (!isObject(v)) throw bad('not an object');
  const interfaces = list(v, 'interfaces').map((i, k) => {
    const out: ResultInterface = { name: str(i, 'name', `interfaces[${k}]`, true)! };
    const mac = str(i, 'mac', `interfaces[${k}]`);
    const sandbox = str(i, 'sandbox', `interfaces[${k}]`);
    if (mac) out.mac = mac;
    if (sandbox) out.sandbox = sandbox;
    if (typeof i.mtu === 'number') out.mtu = i.mtu;
    return out;
  });
  const ips = list(v, 'ips').map((i, k) => {
    const out: ResultIp = { address: cidr(str(i, 'address', `ips[${k}]`, true)!, `ips[${k}].address`) };
    const gw = str(i, 'gateway', `ips[${k}]`);
    if (gw !== undefined) {
      if (!isIp(gw)) throw bad(`ips[${k}].gateway ${JSON.stringify(gw)} is not an IP`);
      out.gateway = gw;
    }
    if (i.interface !== undefined) {
      if (!Number.isInteger(i.interface) || (i.interface as number) < 0 || (i.interface as number) >= interfaces.length) {
        throw bad(`ips[${k}].interface ${JSON.stringify(i.interface)} is not an index into interfaces`);
      }
      out.interface = i.interface as number;
    }
    return out;
  });
  const routes = list(v, 'routes').map((r, k) => {
    const out: ResultRoute = { dst: cidr(str(r, 'dst', `routes[${k}]`, true)!, `routes[${k}].dst`) };
    const gw = str(r, 'gw', `routes[${k}]`);
    if (gw !== undefined) {
      if (!isIp(gw)) throw bad(`routes[${k}].gw ${JSON.stringify(gw)} is not an IP`);
      out.gw = gw;
    }
    return out;
  });
  return { interfaces, ips, routes, dns: isObject(v.dns) ? v.dns : {} };
}

const isLegacy = (version: string) => version.startsWith('0.');

/** The internal result as JSON for `cniVersion` (SPEC.md; 0.3.x/0.4.0 add ips[].version). */
export function formatResult(r: Result, cniVersion: string): Record<string, unknown> {
  const ips = r.ips.map((ip) => ({
    ...(isLegacy(cniVersion) ? { version: ip.address.includes(':') ? '6' : '4' } : {}),
    ...(ip.interface !== undefined ? { interface: ip.interface } : {}),
    address: ip.address,
    ...(ip.gateway ? { gateway: ip.gateway } : {}),
  }));
  const interfaces = r.interfaces.map((i) => ({
    name: i.name,
    ...(i.mac ? { mac: i.mac } : {}),
    ...(i.mtu !== undefined && !isLegacy(cniVersion) && cniVersion !== '1.0.0' ? { mtu: i.mtu } : {}),
    ...(i.sandbox ? { sandbox: i.sandbox } : {}),
  }));
  return { cniVersion, interfaces, ips, routes: r.routes.map((x) => ({ ...x })), dns: r.dns };
}
