// The agent's metrics endpoint (--metrics-listen, kube-proxy's 127.0.0.1:10249 by default):
// GET /metrics (Prometheus text) and GET /healthz on a plain node:http server in the agent's
// netns. Its close() is bounded (src/http/close.ts), so a scraper that went quiet mid-request
// cannot hold the agent's shutdown.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { closeServer } from '../http/close.js';

export interface MetricsServer {
  /** Where it listens (the port resolved when 0 was asked for). */
  address: { host: string; port: number };
  close(): Promise<void>;
}

/** "HOST:PORT" or "[V6]:PORT"; undefined for "off" or "" (disabled). Throws on anything else. */
export function parseListen(text: string): { host: string; port: number } | undefined {
  if (text === '' || text === 'off') return undefined;
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new Error(`expected HOST:PORT (e.g. 127.0.0.1:10249, [::1]:10249, 0.0.0.0:10249) or off, got ${JSON.stringify(text)}`);
  return { host: m[1] ?? m[2]!, port };
}

export async function startMetricsServer(listen: { host: string; port: number }, metrics: { text(): Promise<string>; contentType: string }): Promise<MetricsServer> {
  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') return void res.writeHead(405, { allow: 'GET, HEAD' }).end();
    if (path === '/healthz') return void res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
    if (path !== '/metrics') return void res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: GET /metrics or /healthz\n');
    metrics.text().then(
      (text) => res.writeHead(200, { 'content-type': metrics.contentType }).end(text),
      (e: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`collecting metrics failed: ${e.message}\n`),
    );
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const a = server.address() as AddressInfo;
  return { address: { host: a.address, port: a.port }, close: () => closeServer(server) };
}
