// Validators of single network-config fields (the top-level options, dns, runtimeConfig, args,
// controlPlane): every field of the wrong type is error 7 naming it, never silently ignored.
import { parseCidr } from '../net/cidr.js';
import { AddressError, parseIp } from '../net/ip.js';
import { parseMac } from '../net/mac.js';
import type { ControlPlaneConf } from './register.js';
import { CONTAINER_ID_RULE, IFNAME_RULE, containerIdProblem, ifnameProblem } from '../netlink/names.js';
import { CniError, CNI_ERR } from './errors.js';
import { isObject } from './result.js';

export const PLUGIN_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/** A value as an error message shows it: its type and (the start of) its JSON. */
const describeValue = (v: unknown): string => (Array.isArray(v) ? 'a list' : v === null ? 'null' : `${typeof v} ${JSON.stringify(v)}`.slice(0, 80));

export const bad = (msg: string, details = '') => new CniError(CNI_ERR.INVALID_CONFIG, msg, details);

export function optBool(o: Record<string, unknown>, key: string, dflt: boolean): boolean {
  const v = o[key];
  if (v === undefined) return dflt;
  if (typeof v !== 'boolean') throw bad(`config field ${key} must be true or false, not ${JSON.stringify(v)}`);
  return v;
}

export function optString(o: Record<string, unknown>, key: string, where = key): string | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v.length === 0) throw bad(`config field ${where} must be a non-empty string`);
  return v;
}

export function checkIp(text: string, where: string): string {
  try {
    parseIp(text);
    return text;
  } catch {
    throw bad(`config field ${where} ${JSON.stringify(text)} is not an IP address`);
  }
}

/**
 * A CIDR in one spelling (src/net's parseCidr: the prefix length without leading zeros, since
 * "/08" is 8 to some parsers and an error or octal to others, so it is refused rather than guessed).
 */
export function checkCidr(text: string, where: string): string {
  try {
    parseCidr(text);
  } catch (err) {
    const e = err as AddressError;
    const quoted = `config field ${where} ${JSON.stringify(text)}`;
    throw bad(e.reason === 'prefix' ? `${quoted}: ${e.detail}` : `${quoted} is not a CIDR: ${e.message}`);
  }
  return text;
}

/** An optional object field: undefined when absent, the object when one, error 7 naming it otherwise. */
export function optObject(o: Record<string, unknown>, key: string, where = key): Record<string, unknown> | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  if (!isObject(v)) throw bad(`config field ${where} must be an object, not ${describeValue(v)}`);
  return v;
}

/** `type`: the plugin's name, as the runtime found the binary; when given, a plugin name. */
export function parsePluginType(o: Record<string, unknown>): string {
  const v = o.type;
  if (v === undefined) return 'podwire';
  if (typeof v !== 'string' || !PLUGIN_NAME_RE.test(v)) {
    throw bad(`config field type must be a plugin name (letters, digits, "_", "." and "-"), not ${describeValue(v)}`, 'use "type": "podwire"');
  }
  return v;
}

function optStringList(o: Record<string, unknown>, key: string, where: string, check?: (s: string, at: string) => void): string[] | undefined {
  const v = o[key];
  if (v === undefined) return undefined;
  if (!Array.isArray(v)) throw bad(`config field ${where} must be a list of strings, not ${describeValue(v)}`);
  return v.map((x, i) => {
    if (typeof x !== 'string') throw bad(`config field ${where}[${i}] must be a string, not ${describeValue(x)}`);
    check?.(x, `${where}[${i}]`);
    return x;
  });
}

/** `dns` (SPEC.md "DNS"): nameservers (IPs), domain, search, options; anything else is kept as given. */
export function parseDns(o: Record<string, unknown>): Record<string, unknown> | undefined {
  const dns = optObject(o, 'dns');
  if (!dns) return undefined;
  const out: Record<string, unknown> = { ...dns };
  const nameservers = optStringList(dns, 'nameservers', 'dns.nameservers', (ip, at) => void checkIp(ip, at));
  if (nameservers) out.nameservers = nameservers;
  if (dns.domain !== undefined && typeof dns.domain !== 'string') throw bad(`config field dns.domain must be a string, not ${describeValue(dns.domain)}`);
  for (const key of ['search', 'options']) {
    const list = optStringList(dns, key, `dns.${key}`);
    if (list) out[key] = list;
  }
  return out;
}

export function parseMtu(o: Record<string, unknown>, dflt: number): number {
  const v = o.mtu;
  if (v === undefined || v === 0) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 68 || v > 65535) throw bad(`config field mtu ${JSON.stringify(v)} must be an integer in 68-65535`);
  return v;
}

/** The container MAC and requested IPs: runtimeConfig (capabilities), then args.cni, then CNI_ARGS. */
export function parseRequests(o: Record<string, unknown>, cniArgs: Map<string, string>): { mac?: string; ips: string[] } {
  const rc = optObject(o, 'runtimeConfig') ?? {};
  const args = optObject(o, 'args');
  const argsCni = (args && optObject(args, 'cni', 'args.cni')) ?? {};
  let mac: unknown = rc.mac ?? argsCni.mac ?? cniArgs.get('MAC');
  let ips: unknown = rc.ips ?? argsCni.ips ?? (cniArgs.has('IP') ? cniArgs.get('IP')!.split(',') : undefined);
  if (mac !== undefined) {
    if (typeof mac !== 'string') throw bad('runtime config mac must be a string');
    try {
      const b = parseMac(mac);
      if (b[0] & 1) throw new AddressError('it is a multicast address');
    } catch (err) {
      throw bad(`requested MAC ${JSON.stringify(mac)} is invalid: ${(err as Error).message}`);
    }
  }
  if (ips === undefined) ips = [];
  if (!Array.isArray(ips) || !ips.every((x) => typeof x === 'string')) throw bad('requested ips must be a list of IP addresses');
  const plain = (ips as string[]).map((ip, i) => checkIp(ip.includes('/') ? ip.split('/')[0] : ip, `ips[${i}]`));
  mac = mac === undefined ? undefined : (mac as string).toLowerCase();
  return { mac: mac as string | undefined, ips: plain };
}

export function parseValidAttachments(o: Record<string, unknown>): { containerId: string; ifname: string }[] | undefined {
  const v = o['cni.dev/valid-attachments'];
  if (v === undefined) return undefined;
  if (!Array.isArray(v)) throw bad('cni.dev/valid-attachments must be a list of {containerID, ifname}');
  return v.map((a, i) => {
    if (!isObject(a) || typeof a.containerID !== 'string' || typeof a.ifname !== 'string') {
      throw bad(`cni.dev/valid-attachments[${i}] must be {"containerID": string, "ifname": string}`);
    }
    // The rules ADD held them to (src/netlink/names.ts): GC must not fail half way on one.
    const idProblem = containerIdProblem(a.containerID);
    if (idProblem) throw bad(`cni.dev/valid-attachments[${i}].containerID ${JSON.stringify(a.containerID.slice(0, 80))}: ${idProblem}`, CONTAINER_ID_RULE);
    const ifProblem = ifnameProblem(a.ifname);
    if (ifProblem) throw bad(`cni.dev/valid-attachments[${i}].ifname ${JSON.stringify(a.ifname.slice(0, 80))}: ${ifProblem}`, IFNAME_RULE);
    return { containerId: a.containerID, ifname: a.ifname };
  });
}

const CONTROL_PLANE_KEYS = ['server', 'tokenFile', 'caFile', 'agentSocket', 'nodeName', 'ifname'];
const NODE_NAME_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/**
 * The optional controlPlane section: where and as which node to register pods: through the local
 * agent ({agentSocket, nodeName}: the agent adds its node token) or straight to the control plane
 * ({server, tokenFile, nodeName[, caFile]}).
 */
export function parseControlPlane(o: Record<string, unknown>): ControlPlaneConf | undefined {
  const cp = o.controlPlane;
  if (cp === undefined) return undefined;
  if (!isObject(cp)) throw bad('config field controlPlane must be an object: {agentSocket, nodeName} or {server, tokenFile, nodeName[, caFile]}');
  const unknown = Object.keys(cp).filter((k) => !CONTROL_PLANE_KEYS.includes(k));
  if (unknown.length > 0) throw bad(`config field controlPlane.${unknown[0]} is not known`, `known: ${CONTROL_PLANE_KEYS.join(', ')}`);
  const nodeName = optString(cp, 'nodeName', 'controlPlane.nodeName');
  if (!nodeName || nodeName.length > 253 || !NODE_NAME_RE.test(nodeName)) throw bad(`controlPlane.nodeName ${JSON.stringify(nodeName)} must be the node's name (an RFC 1123 subdomain)`);
  const ifname = optString(cp, 'ifname', 'controlPlane.ifname') ?? 'eth0';
  const agentSocket = optString(cp, 'agentSocket', 'controlPlane.agentSocket');
  if (agentSocket !== undefined) {
    if (!agentSocket.startsWith('/')) throw bad('controlPlane.agentSocket must be an absolute path');
    if (cp.server !== undefined || cp.tokenFile !== undefined) throw bad('controlPlane: give agentSocket, or server and tokenFile, not both');
    return { agentSocket, nodeName, ifname };
  }
  const server = optString(cp, 'server', 'controlPlane.server');
  if (!server || !/^https?:\/\/[^/\s]+\/?$/.test(server)) throw bad(`controlPlane.server ${JSON.stringify(server)} must be http(s)://HOST:PORT`);
  const tokenFile = optString(cp, 'tokenFile', 'controlPlane.tokenFile');
  if (!tokenFile || !tokenFile.startsWith('/')) throw bad('controlPlane.tokenFile must be an absolute path to the node token');
  const caFile = optString(cp, 'caFile', 'controlPlane.caFile');
  if (caFile !== undefined && !caFile.startsWith('/')) throw bad('controlPlane.caFile must be an absolute path');
  return { server: server.replace(/\/$/, ''), tokenFile, ...(caFile ? { caFile } : {}), nodeName, ifname };
}

