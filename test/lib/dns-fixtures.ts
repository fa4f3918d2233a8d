// Services, endpoints and queries for the DNS tests (src/dns).
import dnsPacket from 'dns-packet';
import type { DecodedPacket, OptAnswer, RecordType } from 'dns-packet';
import type { EndpointSubset, Endpoints, Pod, Service } from '../../src/api/objects.js';

export function service(name: string, ns: string, spec: Record<string, unknown>): Service {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: ns }, spec: spec as Service['spec'] };
}

export function endpoints(name: string, ns: string, subsets: EndpointSubset[]): Endpoints {
  return { apiVersion: 'v1', kind: 'Endpoints', metadata: { name, namespace: ns }, subsets };
}

export function pod(name: string, ns: string, ip: string): Pod {
  return { apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: ns }, spec: {}, status: { podIP: ip } };
}

/** n ready addresses 10.244.1.1.. (from the first-th address on) with a named port http/8080. */
export function headlessEndpoints(name: string, ns: string, n: number, hostnames = false, first = 0): Endpoints {
  const addresses = Array.from({ length: n }, (_, k) => {
    const i = first + k;
    return { ip: `10.${244 + Math.floor(i / 62_500)}.${1 + (Math.floor(i / 250) % 250)}.${1 + (i % 250)}`, ...(hostnames ? { hostname: `${name}-${k}` } : {}) };
  });
  return endpoints(name, ns, [{ addresses, ports: [{ name: 'http', port: 8080, protocol: 'TCP' }] }]);
}

export interface QueryOptions {
  id?: number;
  rd?: boolean;
  edns?: number; // the advertised UDP size: an OPT record
  ednsVersion?: number;
  opcode?: number;
  class?: 'IN' | 'CH';
}

export function query(name: string, type: RecordType | 'ANY', o: QueryOptions = {}): Buffer {
  const opt: OptAnswer[] = o.edns ? [{ type: 'OPT', name: '.', udpPayloadSize: o.edns, extendedRcode: 0, ednsVersion: o.ednsVersion ?? 0, flags: 0, flag_do: false, options: [] }] : [];
  const bytes = dnsPacket.encode({
    type: 'query', id: o.id ?? 4242, flags: (o.rd === false ? 0 : dnsPacket.RECURSION_DESIRED) | ((o.opcode ?? 0) << 11),
    questions: [{ name, type: type as RecordType, class: o.class ?? 'IN' }], additionals: opt,
  });
  return bytes;
}

export type Decoded = DecodedPacket & { rcode: string; opcode: string };
export const decode = (b: Buffer): Decoded => dnsPacket.decode(b) as Decoded;
