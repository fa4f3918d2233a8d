// kube-proxy's service and endpoints change trackers, merged: the agent feeds watch events in,
// asks which service ports changed since the last sync, renders those (or everything, when
// `full`), then commits. Each update costs O(ports of that one service × its endpoints), never
// O(all services), so one pod rollout in a 10,000-service cluster stays cheap.
import type { Endpoints, Service } from '../api/objects.js';
import { endpointsFor, serviceNameOf, servicePortsOf } from './model.js';
import { servicePortEndpoints } from './topology.js';
import type { EndpointInfo, ProxyInput, ServicePortInfo, ServicePortEndpoints } from './types.js';

/** The node facts besides its name (which is fixed: it decides which endpoints are local). */
export interface ProxyNodeAddresses {
  ips: string[];
  clusterCidrs: string[];
}

/** A UDP endpoint no longer serving a service port: conntrack entries to it must go. */
export interface RemovedUdpEndpoint {
  key: string;
  /** As last committed: the conntrack entries were created against these addresses. */
  clusterIPs: string[];
  nodePort?: number;
  externalIPs: string[];
  loadBalancerIPs: string[];
  endpointIp: string;
  endpointPort: number;
}

export interface ProxyChangeStats {
  services: number;
  endpoints: number;
  servicePorts: number;
  /** Keys touched since the last commit (pending().changedKeys is the subset that really differs). */
  touchedKeys: number;
  /** Service ports whose endpoints were recomputed since the last commit: the work updates cost. */
  portsComputed: number;
  full: boolean;
}

/** Immutable once built: the committed baseline keeps references, never copies. */
interface PortEntry {
  port: ServicePortEndpoints;
  /** Every endpoint, usable or not: removed-endpoint detection needs the serving flag of each. */
  endpoints: EndpointInfo[];
  json?: string;
}

const sameAddresses = (a: ProxyNodeAddresses, b: ProxyNodeAddresses): boolean =>
  JSON.stringify([a.ips, a.clusterCidrs]) === JSON.stringify([b.ips, b.clusterCidrs]);

// ServicePortEndpoints are built with a fixed key order (model.ts), so equal JSON means equal rules.
function entryJson(entry: PortEntry): string {
  entry.json ??= JSON.stringify(entry.port);
  return entry.json;
}

export class ProxyChangeTracker {
  private readonly services = new Map<string, Service>();
  private readonly endpoints = new Map<string, Endpoints>();
  private readonly keysByService = new Map<string, string[]>();
  private readonly entries = new Map<string, PortEntry>();
  /** Per key touched since the last commit: its committed entry (undefined: did not exist). */
  private readonly baseline = new Map<string, PortEntry | undefined>();
  private sortedKeys: string[] | undefined;
  private node: ProxyNodeAddresses;
  private nodeChanged = false;
  private committed = false;
  private portsComputed = 0;

  constructor(
    readonly nodeName: string,
    node: ProxyNodeAddresses = { ips: [], clusterCidrs: [] },
  ) {
    this.node = { ips: [...node.ips], clusterCidrs: [...node.clusterCidrs] };
  }

  setService(svc: Service): void {
    const name = serviceNameOf(svc);
    this.services.set(name, svc);
    this.refresh(name);
  }

  deleteService(namespace: string, name: string): void {
    const id = `${namespace}/${name}`;
    this.services.delete(id);
    this.refresh(id);
  }

  setEndpoints(ep: Endpoints): void {
    const name = serviceNameOf(ep);
    this.endpoints.set(name, ep);
    this.refresh(name);
  }

  deleteEndpoints(namespace: string, name: string): void {
    const id = `${namespace}/${name}`;
    this.endpoints.delete(id);
    this.refresh(id);
  }

  /**
   * Node addresses feed every NodePort rule and the masquerade rule: a change means a full sync.
   * Returns whether they changed (the caller then asks for a sync).
   */
  setNode(info: ProxyNodeAddresses): boolean {
    if (sameAddresses(info, this.node)) return false;
    this.node = { ips: [...info.ips], clusterCidrs: [...info.clusterCidrs] };
    this.nodeChanged = true;
    return true;
  }

  /**
   * The service-port keys whose endpoints differ from the last commit (touched keys whose result came
   * back identical, e.g. a resync replaying unchanged objects, are left out). `full`: node
   * addresses changed, or nothing was ever committed — kube-proxy's "no partial sync before the
   * first full one", since a partial sync assumes the kernel already holds the rest.
   */
  pending(): { changedKeys: Set<string>; full: boolean } {
    const changedKeys = new Set<string>();
    for (const [key, before] of this.baseline) {
      const after = this.entries.get(key);
      if (before === after) continue;
      if (!before || !after || entryJson(before) !== entryJson(after)) changedKeys.add(key);
    }
    return { changedKeys, full: this.nodeChanged || !this.committed };
  }

  /**
   * UDP endpoints that were serving at the last commit and are gone or no longer serving now.
   * UDP has no connection teardown, so conntrack keeps NATing a client's flow to the dead pod until
   * the entry expires; kube-proxy deletes those entries, and so must the agent (call before commit).
   */
  removedUdpEndpoints(): RemovedUdpEndpoint[] {
    const out: RemovedUdpEndpoint[] = [];
    for (const [key, before] of this.baseline) {
      if (!before || before.port.svc.protocol !== 'UDP') continue;
      const after = this.entries.get(key);
      const stillServing = new Set((after?.endpoints ?? []).filter((e) => e.serving).map((e) => `${e.ip}|${e.port}`));
      for (const e of before.endpoints) {
        if (e.serving && !stillServing.has(`${e.ip}|${e.port}`)) out.push(removedUdp(before.port.svc, e));
      }
    }
    return out.sort(byKeyThenEndpoint);
  }

  /**
   * UDP service ports that went from no usable endpoint to some. While there were none, clients'
   * packets matched the reject rule and conntrack remembered those flows; kube-proxy flushes the
   * entries for the ClusterIPs so the next packet is NATed to the new endpoint.
   */
  newlyActiveUdpKeys(): string[] {
    const out: string[] = [];
    for (const [key, before] of this.baseline) {
      const after = this.entries.get(key);
      if (!after || after.port.svc.protocol !== 'UDP' || after.port.allEndpoints.length === 0) continue;
      if (!before || before.port.allEndpoints.length === 0) out.push(key);
    }
    return out.sort();
  }

  /** The whole current model, ports sorted by key (equal to buildProxyInput over the same objects). */
  input(): ProxyInput {
    this.sortedKeys ??= [...this.entries.keys()].sort();
    const ports = this.sortedKeys.map((key) => (this.entries.get(key) as PortEntry).port);
    return { nodeName: this.nodeName, nodeIPs: [...this.node.ips], clusterCidrs: [...this.node.clusterCidrs], ports };
  }

  /** The agent applied what pending() described: that state is now the baseline. */
  commit(): void {
    this.baseline.clear();
    this.nodeChanged = false;
    this.committed = true;
    this.portsComputed = 0;
  }

  stats(): ProxyChangeStats {
    return {
      services: this.services.size,
      endpoints: this.endpoints.size,
      servicePorts: this.entries.size,
      touchedKeys: this.baseline.size,
      portsComputed: this.portsComputed,
      full: this.nodeChanged || !this.committed,
    };
  }

  /** Recompute the entries of one service (its ports × its endpoints) and nothing else. */
  private refresh(serviceName: string): void {
    const svc = this.services.get(serviceName);
    const ports: ServicePortInfo[] = svc ? servicePortsOf(svc) : [];
    const ep = this.endpoints.get(serviceName);
    const newKeys = ports.map((p) => p.key);
    for (const key of this.keysByService.get(serviceName) ?? []) {
      if (newKeys.includes(key)) continue;
      this.touch(key);
      this.entries.delete(key);
      this.sortedKeys = undefined;
    }
    for (const port of ports) {
      this.touch(port.key);
      if (!this.entries.has(port.key)) this.sortedKeys = undefined;
      const endpoints = endpointsFor(port, ep, this.nodeName);
      this.entries.set(port.key, { port: servicePortEndpoints(port, endpoints), endpoints });
      this.portsComputed++;
    }
    if (newKeys.length > 0) this.keysByService.set(serviceName, newKeys);
    else this.keysByService.delete(serviceName);
  }

  private touch(key: string): void {
    if (!this.baseline.has(key)) this.baseline.set(key, this.entries.get(key));
  }
}

function removedUdp(svc: ServicePortInfo, e: EndpointInfo): RemovedUdpEndpoint {
  return {
    key: svc.key,
    clusterIPs: svc.clusterIPs,
    ...(svc.nodePort !== undefined ? { nodePort: svc.nodePort } : {}),
    externalIPs: svc.externalIPs,
    loadBalancerIPs: svc.loadBalancerIPs,
    endpointIp: e.ip,
    endpointPort: e.port,
  };
}

const compareText = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
const byKeyThenEndpoint = (a: RemovedUdpEndpoint, b: RemovedUdpEndpoint): number =>
  compareText(a.key, b.key) || compareText(a.endpointIp, b.endpointIp) || a.endpointPort - b.endpointPort;
