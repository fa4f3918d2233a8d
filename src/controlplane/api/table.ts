// Server-side printing, as kube-apiserver does it: when kubectl asks for
// `Accept: application/json;as=Table;v=v1;g=meta.k8s.io`, lists, gets and watch events are sent as
// meta.k8s.io/v1 Tables built from the same column rules as `podwire get` (src/printers/tables.ts),
// so `kubectl get services` shows TYPE, CLUSTER-IP, PORT(S) … instead of only NAME and AGE.
import type { KubeObject } from '../../api/objects.js';
import { tableFor } from '../../printers/tables.js';

export function wantsTable(accept: string | undefined): boolean {
  return accept !== undefined && /as=Table/.test(accept) && /g=meta\.k8s\.io/.test(accept);
}

export interface TableRequest {
  kind: string;
  /** includeObject=Object: rows carry the full object (else its metadata, as PartialObjectMetadata). */
  includeObject: boolean;
  now?: number;
}

function columns(kind: string, now: number): { headers: string[]; wideOnly: Set<string>; drop: Set<string> } {
  const narrow = tableFor(kind, [], { wide: false, allNamespaces: false, now }).headers;
  const wide = tableFor(kind, [], { wide: true, allNamespaces: false, now }).headers;
  // kubectl's own Service table has no ENDPOINTS column; the server would need the Endpoints of
  // every listed service (and of every watch event) to fill it. `podwire get` shows it.
  const drop = new Set(kind === 'Service' ? ['ENDPOINTS'] : []);
  return { headers: wide, wideOnly: new Set(wide.filter((h) => !narrow.includes(h))), drop };
}

/** A meta.k8s.io/v1 Table of objects of one kind (also a single-row table for a watch event). */
export function toTable(objects: KubeObject[], req: TableRequest, resourceVersion?: string): object {
  const now = req.now ?? Date.now();
  const { headers, wideOnly, drop } = columns(req.kind, now);
  const rows = tableFor(req.kind, objects, { wide: true, allNamespaces: false, now }).rows;
  const keep = headers.map((h, i) => (drop.has(h) ? -1 : i)).filter((i) => i >= 0);
  return {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata: resourceVersion ? { resourceVersion } : {},
    columnDefinitions: keep.map((i) => ({
      name: headers[i]!,
      type: 'string',
      format: i === 0 ? 'name' : '',
      description: '',
      priority: wideOnly.has(headers[i]!) ? 1 : 0,
    })),
    rows: objects.map((o, r) => ({
      cells: keep.map((i) => rows[r]![i]),
      object: req.includeObject ? o : { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: o.metadata },
    })),
  };
}
