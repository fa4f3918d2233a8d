// Manifests for `podwire apply|delete -f`: YAML or JSON (JSON is YAML), several documents split by
// `---`, `kind: List` wrappers unpacked. Only the kinds podwire serves are accepted, and only what
// podwire stores is kept from each object: a manifest written for (or exported from) Kubernetes
// carries fields such as metadata.managedFields that podwire would otherwise store verbatim.
// Field values are not checked here: the server validates and names every bad field.
import fs from 'node:fs';
import YAML from 'yaml';
import type { KubeObject } from '../api/objects.js';

export interface KindInfo {
  kind: string;
  apiVersion: string;
  /** The URL segment (for ClusterConfig, the singleton's path /api/v1/clusterconfig). */
  plural: string;
  singular: string;
  shortNames: string[];
  namespaced: boolean;
  /** Top-level fields the server stores for this kind, besides apiVersion/kind/metadata. */
  body: string[];
}

export const KINDS: readonly KindInfo[] = [
  { kind: 'Node', apiVersion: 'v1', plural: 'nodes', singular: 'node', shortNames: ['no'], namespaced: false, body: ['spec', 'status'] },
  { kind: 'Pod', apiVersion: 'v1', plural: 'pods', singular: 'pod', shortNames: ['po'], namespaced: true, body: ['spec', 'status'] },
  { kind: 'Service', apiVersion: 'v1', plural: 'services', singular: 'service', shortNames: ['svc'], namespaced: true, body: ['spec'] },
  { kind: 'Endpoints', apiVersion: 'v1', plural: 'endpoints', singular: 'endpoints', shortNames: ['ep'], namespaced: true, body: ['subsets'] },
  { kind: 'ClusterConfig', apiVersion: 'podwire.io/v1', plural: 'clusterconfig', singular: 'clusterconfig', shortNames: ['clusterconfigs', 'cc'], namespaced: false, body: ['spec'] },
];

const META_KEYS = ['name', 'namespace', 'labels', 'annotations'];

/** The kind a command-line resource word means: "svc", "service", "services", "Service" all → Service. */
export function kindForType(word: string): KindInfo | undefined {
  const w = word.toLowerCase();
  return KINDS.find((k) => k.plural === w || k.singular === w || k.kind.toLowerCase() === w || k.shortNames.includes(w));
}

export function kindByName(kind: string): KindInfo | undefined {
  return KINDS.find((k) => k.kind === kind);
}

export class ManifestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ManifestError';
  }
}

export interface Manifest {
  info: KindInfo;
  object: KubeObject;
  /** "web.yaml document 2 (Service)" or with "item 3" inside a List: for error messages. */
  where: string;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function pick(obj: Record<string, unknown>, keys: readonly string[]): Record<string, unknown> {
  return Object.fromEntries(keys.filter((k) => obj[k] !== undefined).map((k) => [k, obj[k]]));
}

/** One object: a known kind with its apiVersion and a name, trimmed to what podwire stores. */
function toManifest(raw: unknown, where: string): Manifest {
  if (!isRecord(raw)) throw new ManifestError(`${where}: expected an object with apiVersion, kind and metadata, got ${Array.isArray(raw) ? 'a list' : JSON.stringify(raw)}`);
  const { kind, apiVersion } = raw;
  const info = typeof kind === 'string' ? kindByName(kind) : undefined;
  const label = `${where} (kind ${JSON.stringify(kind ?? null)})`;
  if (!info) throw new ManifestError(`${label}: unsupported kind; podwire serves ${KINDS.map((k) => `${k.apiVersion} ${k.kind}`).join(', ')}`);
  if (apiVersion !== info.apiVersion) throw new ManifestError(`${label}: apiVersion ${JSON.stringify(apiVersion ?? null)} is not served; use ${info.apiVersion}`);
  const metadata = raw.metadata;
  // The name is needed to build the object's URL; everything else is the server's to check.
  if (!isRecord(metadata) || typeof metadata.name !== 'string' || metadata.name === '') throw new ManifestError(`${label}: metadata.name is required`);
  const object = { apiVersion: info.apiVersion, kind: info.kind, metadata: pick(metadata, META_KEYS), ...pick(raw, info.body) } as unknown as KubeObject;
  return { info, object, where: `${where} (${info.kind} ${metadata.name})` };
}

/** Every object in `text`; `source` names the input in messages ("web.yaml", "stdin"). */
export function parseManifests(text: string, source: string): Manifest[] {
  const out: Manifest[] = [];
  // Everything is parsed before anything is sent, so a typo in a later document cannot leave a partial apply.
  YAML.parseAllDocuments(text).forEach((doc, i) => {
    const where = `${source} document ${i + 1}`;
    // The first line has the reason and "at line L, column C"; the rest is a source excerpt.
    if (doc.errors.length > 0) throw new ManifestError(`${where}: ${doc.errors[0]!.message.split('\n')[0]!.replace(/:$/, '')}`);
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) return; // an empty document, e.g. after a trailing `---`
    if (isRecord(value) && typeof value.kind === 'string' && value.kind.endsWith('List')) {
      if (value.kind !== 'List' && !kindByName(value.kind.slice(0, -4))) throw new ManifestError(`${where} (kind ${JSON.stringify(value.kind)}): unsupported kind`);
      if (!Array.isArray(value.items)) throw new ManifestError(`${where} (kind ${value.kind}): items must be a list`);
      value.items.forEach((item: unknown, j) => out.push(toManifest(item, `${where} item ${j + 1}`)));
      return;
    }
    out.push(toManifest(value, where));
  });
  if (out.length === 0) throw new ManifestError(`${source}: no objects found`);
  return out;
}

/** Reads FILE, or standard input for "-". */
export function readManifests(file: string, stdin: () => string = () => fs.readFileSync(0, 'utf8')): Manifest[] {
  if (file === '-') return parseManifests(stdin(), 'stdin');
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new ManifestError(`${file}: ${(e as Error).message}`);
  }
  return parseManifests(text, file);
}

// ---- apply ---------------------------------------------------------------------------------------

/** True when every field `want` sets has the same value in `have` (lists: same length, item by item). */
export function isSubset(want: unknown, have: unknown): boolean {
  if (Array.isArray(want)) return Array.isArray(have) && want.length === have.length && want.every((w, i) => isSubset(w, have[i]));
  if (isRecord(want)) return isRecord(have) && Object.entries(want).every(([k, w]) => w === undefined || isSubset(w, have[k]));
  return want === have;
}

interface ServiceSpecLike {
  type?: string;
  clusterIP?: string;
  clusterIPs?: string[];
  ports?: { port: number; protocol?: string; nodePort?: number }[];
}

/** The manifest's service spec with the live ClusterIP and NodePorts wherever the manifest leaves them out. */
function keepServiceAllocations(spec: ServiceSpecLike, live: ServiceSpecLike): ServiceSpecLike {
  const out = { ...spec };
  const type = spec.type ?? 'ClusterIP';
  // An ExternalName service has no ClusterIP; a type change to it must not carry the old one along.
  if (type !== 'ExternalName' && !spec.clusterIP && live.clusterIP) {
    out.clusterIP = live.clusterIP;
    if (!spec.clusterIPs?.length && live.clusterIPs) out.clusterIPs = live.clusterIPs;
  }
  if ((type === 'NodePort' || type === 'LoadBalancer') && Array.isArray(spec.ports)) {
    out.ports = spec.ports.map((p) => {
      if (p.nodePort) return p;
      const same = live.ports?.find((l) => l.port === p.port && (l.protocol ?? 'TCP') === (p.protocol ?? 'TCP'));
      return same?.nodePort ? { ...p, nodePort: same.nodePort } : p;
    });
  }
  return out;
}

/**
 * The body `apply` PUTs: the manifest on top of the live object's identity (resourceVersion, so a
 * concurrent writer makes it fail with a Conflict instead of being overwritten, uid and
 * creationTimestamp), plus what the system wrote and the manifest does not mention: the
 * allocated ClusterIP and NodePorts, pod and node status, and the node agent's podwire.io/
 * annotations (underlay IP, VTEP MAC, backend), without which the node would drop out of the network.
 */
export function updateBody(manifest: KubeObject, live: KubeObject): KubeObject {
  const { resourceVersion, uid, creationTimestamp } = live.metadata;
  const body: Record<string, unknown> & KubeObject = { ...manifest, metadata: { ...manifest.metadata, resourceVersion, uid, creationTimestamp } };
  const liveRecord = live as unknown as Record<string, unknown>;
  if (manifest.kind === 'Service' && isRecord(body.spec) && isRecord(liveRecord.spec)) {
    body.spec = keepServiceAllocations(body.spec as ServiceSpecLike, liveRecord.spec as ServiceSpecLike);
  }
  if ((manifest.kind === 'Pod' || manifest.kind === 'Node') && body.status === undefined && liveRecord.status !== undefined) body.status = liveRecord.status;
  if (manifest.kind === 'Node') {
    const agentOwned = Object.entries(live.metadata.annotations ?? {}).filter(([k]) => k.startsWith('podwire.io/') && manifest.metadata.annotations?.[k] === undefined);
    if (agentOwned.length > 0) body.metadata.annotations = { ...Object.fromEntries(agentOwned), ...manifest.metadata.annotations };
  }
  return body;
}
