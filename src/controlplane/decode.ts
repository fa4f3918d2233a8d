// Decoding API bodies into the fields podwire models, as kube-apiserver's decoder does with its Go
// structs: a field the kind does not have is dropped (and reported, so `?fieldValidation=Warn|Strict`
// can warn or refuse), a null field is unset. Kubernetes core/v1 fields podwire does not model
// (pod volumes, node capacity, managedFields, ...) are dropped without a report: they are known to
// Kubernetes, so Strict must not refuse a real manifest for them. Pure; never mutates its input.
//
// Only structure is decided here; the validators check every modelled leaf's type and value
// (test/unit/controlplane-hostile-input.test.ts puts an object at each leaf to keep it so).

/** What a field holds. */
export type Shape =
  /** A string, number or boolean: its validator checks which. */
  | 'scalar'
  /** A string → string map (labels, annotations, selector): keys are data, all kept. */
  | 'map'
  | { readonly list: Shape }
  | { readonly fields: Readonly<Record<string, Shape>>; readonly ignored?: readonly string[] };

export interface Decoded {
  value: unknown;
  /** Paths of dropped fields Kubernetes would not know either, e.g. "spec.ports[0].extra". */
  unknown: string[];
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Drops what `shape` does not model. A value of the wrong kind (a list where an object belongs) is kept for the validator to report. */
export function decode(value: unknown, shape: Shape): Decoded {
  const unknown: string[] = [];
  return { value: walk(value, shape, '', unknown), unknown };
}

// Recursion follows the shape (a handful of levels), never the input's own nesting.
function walk(value: unknown, shape: Shape, path: string, unknown: string[]): unknown {
  if (shape === 'scalar' || shape === 'map') return value;
  if ('list' in shape) return Array.isArray(value) ? value.map((item, i) => walk(item, shape.list, `${path}[${i}]`, unknown)) : value;
  if (!isRecord(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(value)) {
    const at = path ? `${path}.${key}` : key;
    if (field === null) continue;
    const sub = Object.hasOwn(shape.fields, key) ? shape.fields[key] : undefined;
    if (sub !== undefined) out[key] = walk(field, sub, at, unknown);
    else if (!shape.ignored?.includes(key)) unknown.push(at);
  }
  return out;
}

/** Every modelled leaf path of a shape, with "[0]" for list items (for tests and docs). */
export function leafPaths(shape: Shape, path = ''): string[] {
  if (shape === 'scalar' || shape === 'map') return [path];
  if ('list' in shape) return leafPaths(shape.list, `${path}[0]`);
  return Object.entries(shape.fields).flatMap(([key, sub]) => leafPaths(sub, path ? `${path}.${key}` : key));
}

const fields = (f: Record<string, Shape>, ignored: readonly string[] = []): Shape => ({ fields: f, ignored });
const list = (item: Shape): Shape => ({ list: item });
const S = 'scalar' as const;

const METADATA = fields(
  { name: S, namespace: S, uid: S, resourceVersion: S, creationTimestamp: S, labels: 'map', annotations: 'map' },
  // Set by kube-apiserver's machinery podwire does not run (generation, deletion, GC, field managers).
  ['generateName', 'selfLink', 'generation', 'deletionTimestamp', 'deletionGracePeriodSeconds', 'ownerReferences', 'finalizers', 'managedFields'],
);

const object = (body: Record<string, Shape>): Shape => fields({ apiVersion: S, kind: S, metadata: METADATA, ...body });

const CONDITION = { type: S, status: S, reason: S, message: S, lastTransitionTime: S };

export const NODE_SHAPE = object({
  spec: fields({ podCIDR: S, podCIDRs: list(S), unschedulable: S }, ['providerID', 'taints', 'configSource', 'externalID']),
  status: fields(
    {
      addresses: list(fields({ type: S, address: S })),
      conditions: list(fields({ ...CONDITION, lastHeartbeatTime: S })),
    },
    ['capacity', 'allocatable', 'phase', 'daemonEndpoints', 'nodeInfo', 'images', 'volumesInUse', 'volumesAttached', 'config', 'runtimeHandlers', 'features'],
  ),
});

const CONTAINER = fields(
  { name: S, image: S, ports: list(fields({ name: S, containerPort: S, protocol: S }, ['hostPort', 'hostIP'])) },
  ['command', 'args', 'workingDir', 'envFrom', 'env', 'resources', 'resizePolicy', 'restartPolicy', 'volumeMounts', 'volumeDevices', 'livenessProbe', 'readinessProbe', 'startupProbe', 'lifecycle', 'terminationMessagePath', 'terminationMessagePolicy', 'imagePullPolicy', 'securityContext', 'stdin', 'stdinOnce', 'tty'],
);

export const POD_SHAPE = object({
  spec: fields({ nodeName: S, containers: list(CONTAINER) }, [
    'volumes', 'initContainers', 'ephemeralContainers', 'restartPolicy', 'terminationGracePeriodSeconds', 'activeDeadlineSeconds', 'dnsPolicy', 'nodeSelector',
    'serviceAccountName', 'serviceAccount', 'automountServiceAccountToken', 'hostNetwork', 'hostPID', 'hostIPC', 'shareProcessNamespace', 'securityContext',
    'imagePullSecrets', 'hostname', 'subdomain', 'affinity', 'schedulerName', 'tolerations', 'hostAliases', 'priorityClassName', 'priority', 'dnsConfig',
    'readinessGates', 'runtimeClassName', 'enableServiceLinks', 'preemptionPolicy', 'overhead', 'topologySpreadConstraints', 'setHostnameAsFQDN', 'os',
    'hostUsers', 'schedulingGates', 'resourceClaims',
  ]),
  status: fields(
    { phase: S, podIP: S, podIPs: list(fields({ ip: S })), hostIP: S, conditions: list(fields({ ...CONDITION, lastProbeTime: S })) },
    ['message', 'reason', 'nominatedNodeName', 'hostIPs', 'startTime', 'initContainerStatuses', 'containerStatuses', 'qosClass', 'ephemeralContainerStatuses', 'resize', 'resourceClaimStatuses'],
  ),
});

export const SERVICE_SHAPE = object({
  spec: fields(
    {
      type: S,
      selector: 'map',
      ports: list(fields({ name: S, protocol: S, port: S, targetPort: S, nodePort: S }, ['appProtocol'])),
      clusterIP: S,
      clusterIPs: list(S),
      externalName: S,
      externalIPs: list(S),
      loadBalancerIP: S,
      sessionAffinity: S,
      sessionAffinityConfig: fields({ clientIP: fields({ timeoutSeconds: S }) }),
      externalTrafficPolicy: S,
      internalTrafficPolicy: S,
      publishNotReadyAddresses: S,
    },
    ['loadBalancerSourceRanges', 'healthCheckNodePort', 'ipFamilies', 'ipFamilyPolicy', 'allocateLoadBalancerNodePorts', 'loadBalancerClass', 'trafficDistribution'],
  ),
  status: fields({ loadBalancer: fields({ ingress: list(fields({ ip: S, hostname: S }, ['ipMode', 'ports'])) }) }, ['conditions']),
});

const ENDPOINT_ADDRESS = fields({ ip: S, hostname: S, nodeName: S, targetRef: fields({ kind: S, namespace: S, name: S, uid: S }, ['apiVersion', 'resourceVersion', 'fieldPath']) });

export const ENDPOINTS_SHAPE = object({
  subsets: list(fields({ addresses: list(ENDPOINT_ADDRESS), notReadyAddresses: list(ENDPOINT_ADDRESS), ports: list(fields({ name: S, port: S, protocol: S }, ['appProtocol'])) })),
});
