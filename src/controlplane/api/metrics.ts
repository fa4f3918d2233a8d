// Prometheus metrics of one control plane instance (its own prom-client registry, so several
// servers in one test process do not collide).
import client from 'prom-client';
import { parseNodePortState } from '../alloc/node-port.js';
import { parsePodCidrState, podCidrUsage } from '../alloc/cidr.js';
import { nodePortUsage } from '../alloc/node-port.js';
import { parseServiceIpState, serviceIpUsage } from '../alloc/service-ip.js';
import type { Store } from '../store/types.js';
import { layoutsOf, NODE_PORT_KEY, POD_CIDR_KEY, readClusterConfig, SERVICE_IP_KEY } from './allocations.js';

export interface ControlPlaneMetrics {
  registry: client.Registry;
  requests: client.Counter<'method' | 'route' | 'code'>;
  duration: client.Histogram<'method' | 'route'>;
  watches: client.Gauge;
  watchEvents: client.Counter<'type'>;
}

export function createMetrics(store: Store): ControlPlaneMetrics {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry, prefix: 'podwire_controlplane_' });
  const requests = new client.Counter({ name: 'podwire_controlplane_http_requests_total', help: 'API requests by method, route and status code', labelNames: ['method', 'route', 'code'] as const, registers: [registry] });
  const duration = new client.Histogram({
    name: 'podwire_controlplane_http_request_duration_seconds',
    help: 'API request latency (watches: until the stream opens)',
    labelNames: ['method', 'route'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  const watches = new client.Gauge({ name: 'podwire_controlplane_watches', help: 'Open watch streams', registers: [registry] });
  const watchEvents = new client.Counter({ name: 'podwire_controlplane_watch_events_sent_total', help: 'Watch events written to clients, by type', labelNames: ['type'] as const, registers: [registry] });
  new client.Gauge({
    name: 'podwire_controlplane_store_revision',
    help: 'Current store revision',
    registers: [registry],
    async collect() {
      this.set(await store.revision());
    },
  });
  new client.Gauge({
    name: 'podwire_controlplane_allocated',
    help: 'Allocated entries per allocator (podcidr, clusterip, nodeport)',
    labelNames: ['allocator', 'of'] as const,
    registers: [registry],
    async collect() {
      const l = layoutsOf(await readClusterConfig(store));
      const usage = async (key: string, fn: (v: unknown) => { used: number; total: number }) => {
        const o = await store.get(key);
        return o ? fn(o.value) : { used: 0, total: NaN };
      };
      const rows: [string, { used: number; total: number }][] = [
        ['podcidr', await usage(POD_CIDR_KEY, (v) => podCidrUsage(l.podCidr, parsePodCidrState(v, l.podCidr)))],
        ['clusterip', await usage(SERVICE_IP_KEY, (v) => serviceIpUsage(l.serviceIp, parseServiceIpState(v, l.serviceIp)))],
        ['nodeport', await usage(NODE_PORT_KEY, (v) => nodePortUsage(l.nodePort, parseNodePortState(v, l.nodePort)))],
      ];
      for (const [allocator, u] of rows) {
        this.set({ allocator, of: 'used' }, u.used);
        if (!Number.isNaN(u.total)) this.set({ allocator, of: 'total' }, u.total);
      }
    },
  });
  return { registry, requests, duration, watches, watchEvents };
}
