// The watch stream: `GET …?watch=1[&resourceVersion=N][&allowWatchBookmarks=true]` answers with
// newline-delimited JSON events {type, object} in revision order, as kube-apiserver does.
// - resourceVersion absent or "0": the current objects as ADDED events, then every change after;
// - resourceVersion N: every change after revision N; 410 Gone (reason Expired) when the store no
//   longer holds that history, so the client relists;
// - with a label or field selector, an object that stops matching is sent as DELETED and one that
//   starts matching as ADDED (what a cache built from the watch needs);
// - BOOKMARK events carry the revision the stream has reached, so an idle client can resume there.
import type { ServerResponse } from 'node:http';
import type { KubeObject, WatchEventBody } from '../../api/objects.js';
import { isStoreError, type Store, type WatchEvent, type WatchHandle } from '../store/types.js';
import { ApiError, statusOf } from './status.js';
import { selected, toApiObject, type ListOptions } from './registry.js';
import type { ResourceDef } from './resources.js';

export interface WatchRequest {
  def: ResourceDef;
  prefix: string;
  resourceVersion?: string;
  select: ListOptions;
  allowBookmarks: boolean;
  bookmarkIntervalMs: number;
  timeoutSeconds?: number;
  /** How an object is sent (e.g. as a one-row Table for kubectl); default as is. */
  present?: (obj: KubeObject) => unknown;
}

export interface WatchHooks {
  onOpen(): void;
  onClose(): void;
  onEvent(type: string): void;
}

/** A slow reader whose unsent events pile up past this is cut off; it will relist. */
const MAX_BUFFERED_BYTES = 16 * 1024 * 1024;

function parseRevision(text: string | undefined): number | undefined {
  if (text === undefined || text === '' || text === '0') return undefined;
  if (!/^\d{1,15}$/.test(text)) throw new ApiError('BadRequest', `resourceVersion ${JSON.stringify(text)}: expected a non-negative integer from an earlier list or watch`);
  return Number(text);
}

/**
 * Validates and opens the watch before any byte of the response is sent (errors are still plain
 * Status replies), then streams until the client goes away, the timeout passes or stop() is called.
 */
export async function startWatch(store: Store, req: WatchRequest, openResponse: () => ServerResponse, hooks: WatchHooks): Promise<{ stop: () => void; done: Promise<void> }> {
  const from = parseRevision(req.resourceVersion);
  const filtered = req.select.labelSelector !== undefined || req.select.fieldSelector !== undefined;
  const matching = new Set<string>(); // keys currently inside the selection (filtered watches)
  const initial: WatchEventBody[] = [];
  let start = from ?? 0;
  if (from === undefined) {
    const list = await store.list<KubeObject>(req.prefix);
    start = list.revision;
    for (const item of list.items) {
      const obj = toApiObject(item);
      if (!selected(obj, req.select)) continue;
      matching.add(item.key);
      initial.push({ type: 'ADDED', object: obj });
    }
  }
  let lastRevision = start;
  const pending: WatchEvent<KubeObject>[] = [];
  let write: ((ev: WatchEvent<KubeObject>) => void) | undefined;
  let fail: ((e: Error) => void) | undefined;
  let handle: WatchHandle;
  try {
    handle = await store.watch<KubeObject>(
      req.prefix,
      start,
      (ev) => (write ? write(ev) : pending.push(ev)),
      (e) => fail?.(e),
    );
  } catch (e) {
    if (isStoreError(e, 'Gone')) throw new ApiError('Expired', `too old resource version: ${req.resourceVersion} (${e.message}); list again and watch from the list's resourceVersion`);
    throw e;
  }

  const res = openResponse();
  res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-cache, private', 'transfer-encoding': 'chunked' });
  res.flushHeaders();
  hooks.onOpen();
  let finished = false;
  let resolveDone!: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));
  const timers: NodeJS.Timeout[] = [];
  const stop = (): void => {
    if (finished) return;
    finished = true;
    handle.close();
    timers.forEach((t) => clearTimeout(t));
    res.end();
    hooks.onClose();
    resolveDone();
  };
  const present = req.present;
  const send = (body: WatchEventBody): void => {
    if (finished) return;
    const out = present && body.type !== 'BOOKMARK' && body.type !== 'ERROR' ? { type: body.type, object: present(body.object as KubeObject) } : body;
    res.write(JSON.stringify(out) + '\n');
    hooks.onEvent(body.type);
    if (res.writableLength > MAX_BUFFERED_BYTES) {
      res.write(JSON.stringify({ type: 'ERROR', object: statusOf(410, 'Expired', 'watch closed: the client reads too slowly; list again and watch from the list\'s resourceVersion') }) + '\n');
      stop();
    }
  };
  write = (ev) => {
    lastRevision = ev.revision;
    const obj: KubeObject = { ...ev.value, metadata: { ...ev.value.metadata, resourceVersion: String(ev.revision) } };
    if (!filtered) return send({ type: ev.type, object: obj });
    const isIn = ev.type !== 'DELETED' && selected(obj, req.select);
    const wasIn = matching.has(ev.key);
    if (isIn) matching.add(ev.key);
    else matching.delete(ev.key);
    if (ev.type === 'DELETED') return wasIn || from !== undefined ? send({ type: 'DELETED', object: obj }) : undefined;
    if (isIn) return send({ type: wasIn || (from !== undefined && ev.type === 'MODIFIED') ? ev.type : 'ADDED', object: obj });
    if (wasIn) send({ type: 'DELETED', object: obj });
  };
  fail = (e) => {
    const gone = isStoreError(e, 'Gone');
    send({ type: 'ERROR', object: statusOf(gone ? 410 : 500, gone ? 'Expired' : 'InternalError', `watch failed: ${e.message}; list again and watch from the list's resourceVersion`) });
    stop();
  };
  initial.forEach(send);
  pending.splice(0).forEach(write);
  res.on('close', stop);
  if (req.allowBookmarks) {
    const tick = (): void => {
      send({ type: 'BOOKMARK', object: { apiVersion: 'v1', kind: req.def.kind, metadata: { name: '', resourceVersion: String(lastRevision) } } as KubeObject });
      timers[0] = setTimeout(tick, req.bookmarkIntervalMs);
    };
    timers[0] = setTimeout(tick, req.bookmarkIntervalMs);
  }
  if (req.timeoutSeconds !== undefined) timers[1] = setTimeout(stop, req.timeoutSeconds * 1000);
  return { stop, done };
}
