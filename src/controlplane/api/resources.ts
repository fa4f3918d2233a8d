// The resources the API serves: names as kube-apiserver's discovery spells them, the store prefix,
// the validator, defaulting, and the allocation hooks run inside the write's store txn.
import type { KubeObject, Node, Pod, Service, Endpoints } from '../../api/objects.js';
import type { Txn } from '../store/types.js';
import { validateDns1035Label, validateDns1123Subdomain, validateService, type FieldError } from '../../api/validate.js';
import { ENDPOINTS_SHAPE, NODE_SHAPE, POD_SHAPE, SERVICE_SHAPE, type Shape } from '../decode.js';
import { validateEndpoints, validateNode, validatePod } from '../validate-objects.js';
import { assignPodCidr, assignServiceAddresses, releaseNodeCidr, releaseServiceAddresses } from './allocations.js';

export interface ResourceDef<T extends KubeObject = KubeObject> {
  kind: string;
  listKind: string;
  /** URL segment and discovery name: "services". */
  plural: string;
  singular: string;
  shortNames: string[];
  namespaced: boolean;
  /** Store keys: <prefix>/<name> or <prefix>/<namespace>/<name>. */
  prefix: string;
  /** The fields the kind has; the decoder drops the rest (decode.ts). */
  shape: Shape;
  /** The rule for metadata.name (the one its validate() applies); store keys are built only from names that pass it. */
  validateName(value: unknown, field: string): FieldError[];
  validate(body: unknown): FieldError[];
  /** Fills what a client may leave out (pure; runs before the hooks). */
  defaults(obj: T): T;
  /** Runs in the write's txn; returns the object to store (e.g. with its allocations). */
  onCreate?(tx: Txn, obj: T): Promise<T>;
  onUpdate?(tx: Txn, next: T, old: T): Promise<T>;
  onDelete?(tx: Txn, old: T): Promise<void>;
}

function defaultService(svc: Service): Service {
  const spec = { ...svc.spec };
  spec.type ??= 'ClusterIP';
  spec.sessionAffinity ??= 'None';
  if (spec.sessionAffinity === 'ClientIP') {
    spec.sessionAffinityConfig = { clientIP: { timeoutSeconds: spec.sessionAffinityConfig?.clientIP?.timeoutSeconds ?? 10800 } };
  }
  if (spec.type !== 'ExternalName') {
    spec.ports = (spec.ports ?? []).map((p) => ({ ...p, protocol: p.protocol ?? 'TCP', targetPort: p.targetPort ?? p.port }));
    spec.internalTrafficPolicy ??= 'Cluster';
  }
  if (spec.type === 'NodePort' || spec.type === 'LoadBalancer') spec.externalTrafficPolicy ??= 'Cluster';
  return { ...svc, spec };
}

const definitions: ResourceDef[] = [
  {
    kind: 'Node',
    listKind: 'NodeList',
    plural: 'nodes',
    singular: 'node',
    shortNames: ['no'],
    namespaced: false,
    prefix: '/nodes',
    shape: NODE_SHAPE,
    validateName: validateDns1123Subdomain,
    validate: validateNode,
    defaults: (n) => ({ ...n, spec: { ...((n as Node).spec ?? {}) } }) as Node,
    onCreate: (tx, n) => assignPodCidr(tx, n as Node),
    onUpdate: (tx, n, old) => assignPodCidr(tx, n as Node, old as Node),
    onDelete: (tx, old) => releaseNodeCidr(tx, old as Node),
  } as ResourceDef<Node> as unknown as ResourceDef,
  {
    kind: 'Pod',
    listKind: 'PodList',
    plural: 'pods',
    singular: 'pod',
    shortNames: ['po'],
    namespaced: true,
    prefix: '/pods',
    shape: POD_SHAPE,
    validateName: validateDns1123Subdomain,
    validate: validatePod,
    defaults: (p) => ({ ...p, status: { phase: 'Pending', ...((p as Pod).status ?? {}) } }) as Pod,
  },
  {
    kind: 'Service',
    listKind: 'ServiceList',
    plural: 'services',
    singular: 'service',
    shortNames: ['svc'],
    namespaced: true,
    prefix: '/services',
    shape: SERVICE_SHAPE,
    validateName: validateDns1035Label,
    validate: validateService,
    defaults: (s) => defaultService(s as Service),
    onCreate: (tx, s) => assignServiceAddresses(tx, s as Service),
    onUpdate: (tx, s, old) => assignServiceAddresses(tx, s as Service, old as Service),
    onDelete: (tx, old) => releaseServiceAddresses(tx, old as Service),
  } as ResourceDef<Service> as unknown as ResourceDef,
  {
    kind: 'Endpoints',
    listKind: 'EndpointsList',
    plural: 'endpoints',
    singular: 'endpoints',
    shortNames: ['ep'],
    namespaced: true,
    prefix: '/endpoints',
    shape: ENDPOINTS_SHAPE,
    // An Endpoints object is named after its Service.
    validateName: validateDns1035Label,
    validate: validateEndpoints,
    defaults: (e) => ({ ...e, subsets: (e as Endpoints).subsets ?? [] }) as Endpoints,
  },
];

export const RESOURCES: ReadonlyMap<string, ResourceDef> = new Map(definitions.map((d) => [d.plural, d]));

export function resource(plural: string): ResourceDef {
  const def = RESOURCES.get(plural);
  if (!def) throw new Error(`unknown resource ${plural}`);
  return def;
}
