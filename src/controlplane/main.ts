#!/usr/bin/env node
// podwire-controlplane:
//   podwire-controlplane init --data-dir DIR [cluster options]   writes DIR/admin.token (0600) and DIR/config.json
//   podwire-controlplane --data-dir DIR [--listen HOST:PORT] [--store sqlite|etcd] [--etcd-endpoints URLS] [--tls-cert F --tls-key F]
import fs from 'node:fs';
import path from 'node:path';
import { flagHelp, parseArgs, UsageError, type FlagSpecs } from '../flags/flags.js';
import { VERSION } from '../version.js';
import { BACKENDS, DEFAULT_CLUSTER_CONFIG, type ClusterConfigSpec } from '../api/objects.js';
import { clusterConfigSpecWithDefaults, validateClusterConfig } from './validate-objects.js';
import { formatFieldErrors } from '../api/validate.js';
import { newToken } from './api/auth.js';
import { localHttpServer } from '../http/local-server.js';
import { closeServer } from '../http/close.js';
import type { Store } from './store/types.js';

const INIT_FLAGS: FlagSpecs = {
  'data-dir': { type: 'string', help: 'directory for the admin token, cluster config and SQLite store' },
  'cluster-cidr': { type: 'string', default: DEFAULT_CLUSTER_CONFIG.clusterCIDR, help: 'pod addresses; each node gets a slice' },
  'node-mask': { type: 'int', default: DEFAULT_CLUSTER_CONFIG.nodeMask, min: 1, max: 128, help: 'prefix length of each node podCIDR' },
  'service-cidr': { type: 'string', default: DEFAULT_CLUSTER_CONFIG.serviceCIDR, help: 'ClusterIP range' },
  'node-port-range': { type: 'string', default: DEFAULT_CLUSTER_CONFIG.nodePortRange, help: 'NodePort range FIRST-LAST' },
  backend: { type: 'enum', choices: BACKENDS, default: DEFAULT_CLUSTER_CONFIG.backend, help: 'overlay backend' },
  'cluster-dns': { type: 'string', help: 'ClusterIP of the cluster DNS Service kube-system/kube-dns, inside --service-cidr (default: its 10th address, 10.96.0.10)' },
  'cluster-domain': { type: 'string', default: DEFAULT_CLUSTER_CONFIG.clusterDomain, help: 'the cluster DNS zone pods search' },
};

const SERVE_FLAGS: FlagSpecs = {
  'data-dir': { type: 'string', help: 'directory made by init' },
  listen: { type: 'string', default: '127.0.0.1:6443', help: 'HOST:PORT to serve on' },
  'unix-socket': { type: 'string', help: 'also serve on this unix socket (0600; local admin tools, the netns lab)' },
  store: { type: 'enum', choices: ['sqlite', 'etcd'], default: 'sqlite', help: 'where the state is kept' },
  'sqlite-path': { type: 'string', help: 'SQLite file (default DATA_DIR/state.db)' },
  'etcd-endpoints': { type: 'string', help: 'comma-separated etcd URLs, e.g. http://10.0.0.1:2379' },
  'etcd-prefix': { type: 'string', default: '/podwire', help: 'key prefix in etcd' },
  'tls-cert': { type: 'string', help: 'PEM certificate: serve HTTPS' },
  'tls-key': { type: 'string', help: 'PEM private key for --tls-cert' },
  'log-level': { type: 'enum', choices: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], default: 'info', help: 'log level' },
  'bookmark-interval': { type: 'int', default: 60, min: 1, max: 3600, help: 'seconds between watch BOOKMARK events' },
};

const USAGE = `podwire-controlplane ${VERSION}

usage:
  podwire-controlplane init --data-dir DIR [options]
${flagHelp(INIT_FLAGS)}

  podwire-controlplane --data-dir DIR [options]
${flagHelp(SERVE_FLAGS)}`;

function need(value: unknown, flag: string): string {
  if (typeof value !== 'string' || value === '') throw new UsageError(`--${flag} is required; see podwire-controlplane --help`);
  return value;
}

function init(argv: string[]): number {
  const { flags, positional } = parseArgs(argv, INIT_FLAGS);
  if (positional.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positional[0])}`);
  const dir = path.resolve(need(flags['data-dir'], 'data-dir'));
  const spec = {
    clusterCIDR: flags['cluster-cidr'],
    nodeMask: flags['node-mask'],
    serviceCIDR: flags['service-cidr'],
    nodePortRange: flags['node-port-range'],
    backend: flags.backend,
    ...(flags['cluster-dns'] !== undefined ? { clusterDNS: flags['cluster-dns'] } : {}),
    clusterDomain: flags['cluster-domain'],
  };
  const errors = validateClusterConfig({ metadata: { name: 'cluster' }, spec });
  if (errors.length > 0) throw new UsageError(`invalid cluster config: ${formatFieldErrors(errors)}`);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const tokenPath = path.join(dir, 'admin.token');
  const configPath = path.join(dir, 'config.json');
  const kept: string[] = [];
  try {
    fs.writeFileSync(tokenPath, newToken('admin') + '\n', { mode: 0o600, flag: 'wx' });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    kept.push(tokenPath);
  }
  try {
    fs.writeFileSync(configPath, JSON.stringify({ apiVersion: 'podwire.io/v1', kind: 'ClusterConfig', metadata: { name: 'cluster' }, spec: clusterConfigSpecWithDefaults(spec) }, null, 2) + '\n', { mode: 0o600, flag: 'wx' });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    kept.push(configPath);
  }
  for (const p of kept) console.log(`kept existing ${p}`);
  console.log(`initialised ${dir}: admin token in ${tokenPath}, cluster config in ${configPath}`);
  return 0;
}

function readConfig(dir: string): ClusterConfigSpec {
  const file = path.join(dir, 'config.json');
  let body: unknown;
  try {
    body = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new UsageError(`cannot read ${file}: ${(e as Error).message}; run podwire-controlplane init --data-dir ${dir} first`);
  }
  const errors = validateClusterConfig(body);
  if (errors.length > 0) throw new UsageError(`${file}: ${formatFieldErrors(errors)}`);
  return clusterConfigSpecWithDefaults((body as { spec?: unknown }).spec);
}

function readToken(dir: string): string {
  const file = path.join(dir, 'admin.token');
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8').trim();
  } catch (e) {
    throw new UsageError(`cannot read ${file}: ${(e as Error).message}; run podwire-controlplane init --data-dir ${dir} first`);
  }
  if (text.length < 16) throw new UsageError(`${file} holds no usable token (at least 16 characters)`);
  return text;
}

function parseListen(text: string): { host: string; port: number } {
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:]+):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535) throw new UsageError(`--listen ${JSON.stringify(text)}: expected HOST:PORT, e.g. 127.0.0.1:6443 or [::1]:6443`);
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
}

async function openStore(flags: Record<string, unknown>, dir: string): Promise<Store> {
  if (flags.store === 'sqlite') {
    const { openSqliteStore } = await import('./store/sqlite.js');
    return openSqliteStore({ path: (flags['sqlite-path'] as string | undefined) ?? path.join(dir, 'state.db') });
  }
  if (flags.store === 'etcd') {
    const hosts = need(flags['etcd-endpoints'], 'etcd-endpoints').split(',').map((s) => s.trim()).filter(Boolean);
    const { EtcdStore } = await import('./store/etcd.js');
    const store = new EtcdStore({ hosts, prefix: flags['etcd-prefix'] as string });
    await store.revision().catch((e: Error) => {
      throw new Error(`cannot reach etcd at ${hosts.join(',')}: ${e.message}`);
    });
    return store;
  }
  throw new UsageError(`--store ${JSON.stringify(flags.store)}: expected sqlite or etcd`);
}

async function serve(argv: string[]): Promise<number> {
  const { flags, positional } = parseArgs(argv, SERVE_FLAGS);
  if (positional.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positional[0])}; see podwire-controlplane --help`);
  const dir = path.resolve(need(flags['data-dir'], 'data-dir'));
  const { host, port } = parseListen(flags.listen as string);
  const adminToken = readToken(dir);
  const clusterConfig = readConfig(dir);
  if (Boolean(flags['tls-cert']) !== Boolean(flags['tls-key'])) throw new UsageError('--tls-cert and --tls-key go together');
  const https = flags['tls-cert'] ? { cert: fs.readFileSync(flags['tls-cert'] as string), key: fs.readFileSync(flags['tls-key'] as string) } : undefined;
  const store = await openStore(flags, dir);
  const { buildServer } = await import('./api/server.js');
  const app = buildServer({ store, adminTokens: [adminToken], clusterConfig, clusterDnsService: true, https, logger: { level: flags['log-level'] as string }, bookmarkIntervalMs: (flags['bookmark-interval'] as number) * 1000 });
  let closing = false;
  let local: import('node:http').Server | undefined;
  const shutdown = (signal: string) => {
    if (closing) return;
    closing = true;
    app.log.info({ signal }, 'shutting down');
    const force = setTimeout(() => process.exit(1), 10_000);
    force.unref();
    // Both listeners close at once, each in about CLOSE_GRACE_MS at most (src/http/close.ts).
    Promise.all([app.close(), local ? closeServer(local) : undefined])
      .then(() => store.close())
      .then(() => process.exit(0), (e: Error) => {
        process.stderr.write(`podwire-controlplane: shutdown failed: ${e.message}\n`);
        process.exit(1);
      });
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  await app.listen({ host, port });
  if (flags['unix-socket']) local = await listenUnix(app.server, flags['unix-socket'] as string);
  return -1; // keep running
}

/** A second listener on a unix socket that hands its requests to the same app (same hooks, auth). */
async function listenUnix(server: import('node:http').Server, socketPath: string): Promise<import('node:http').Server> {
  // Bound under umask 0177, never reachable by others, not even before the chmod; keep-alive as
  // the TCP listener's (src/http/local-server.ts).
  const local = localHttpServer((req, res) => server.emit('request', req, res));
  fs.rmSync(socketPath, { force: true });
  await new Promise<void>((resolve, reject) => local.once('error', reject).listen(socketPath, resolve));
  fs.chmodSync(socketPath, 0o600);
  return local;
}

async function main(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === '--version' || first === 'version') {
    console.log(VERSION);
    return 0;
  }
  if (first === '--help' || first === '-h' || first === 'help') {
    console.log(USAGE);
    return 0;
  }
  if (first === 'init') return init(rest);
  return serve(argv);
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (err: Error) => {
    process.stderr.write(`podwire-controlplane: ${err.message}\n`);
    process.exit(err instanceof UsageError ? 2 : 1);
  },
);
