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
  const initial = from === undefined ? await listInitial(store, req) : { revision: from, events: [], matching: new Set<string>() };
  const relay: Relay = { pending: [] };
  const handle = await watchStore(store, req, initial.revision, relay);
  const stream = openStream(openResponse(), handle, hooks, req.present);
  const position = { revision: initial.revision };
  const write = eventWriter(req, initial.matching, from !== undefined, position, stream.send);
  relay.write = write;
  relay.fail = (e) => {
    const gone = isStoreError(e, 'Gone');
    stream.send({ type: 'ERROR', object: statusOf(gone ? 410 : 500, gone ? 'Expired' : 'InternalError', `watch failed: ${e.message}; list again and watch from the list's resourceVersion`) });
    stream.stop();
  };
  initial.events.forEach(stream.send);
  relay.pending.splice(0).forEach(write);
  stream.res.on('close', stream.stop);
  // The client may have gone while the list or the store watch was awaited: its 'close' came
  // before the listener above, and the watch would stay open until its timeout.
  if (stream.res.destroyed) stream.stop();
  startTimers(req, stream, position);
  return { stop: stream.stop, done: stream.done };
}

/** The selected objects now, as ADDED events, and the revision to watch from. */
async function listInitial(store: Store, req: WatchRequest): Promise<{ revision: number; events: WatchEventBody[]; matching: Set<string> }> {
  const list = await store.list<KubeObject>(req.prefix);
  const events: WatchEventBody[] = [];
  const matching = new Set<string>(); // keys currently inside the selection (filtered watches)
  for (const item of list.items) {
    const obj = toApiObject(item);
    if (!selected(obj, req.select)) continue;
    matching.add(item.key);
    events.push({ type: 'ADDED', object: obj });
  }
  return { revision: list.revision, events, matching };
}

/** Where store events go: queued until the response is open, so none is lost or sent early. */
interface Relay {
  pending: WatchEvent<KubeObject>[];
  write?: (ev: WatchEvent<KubeObject>) => void;
  fail?: (e: Error) => void;
}

async function watchStore(store: Store, req: WatchRequest, start: number, relay: Relay): Promise<WatchHandle> {
  try {
    return await store.watch<KubeObject>(
      req.prefix,
      start,
      (ev) => (relay.write ? relay.write(ev) : relay.pending.push(ev)),
      (e) => relay.fail?.(e),
    );
  } catch (e) {
    if (isStoreError(e, 'Gone')) throw new ApiError('Expired', `too old resource version: ${req.resourceVersion} (${e.message}); list again and watch from the list's resourceVersion`);
    throw e;
  }
}

interface Stream {
  res: ServerResponse;
  send(body: WatchEventBody): void;
  stop(): void;
  done: Promise<void>;
  readonly finished: boolean;
  /** Bookmark and timeout timers, cleared by stop(). */
  timers: NodeJS.Timeout[];
}

/** The response as an event sink: one JSON line per event, ended once, whoever ends it first. */
function openStream(res: ServerResponse, handle: WatchHandle, hooks: WatchHooks, present: WatchRequest['present']): Stream {
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
  return { res, send, stop, done, timers, get finished() { return finished; } };
}

/** Store events → sent events: the revision stamped on the object, selection changes applied. */
function eventWriter(req: WatchRequest, matching: Set<string>, resumed: boolean, position: { revision: number }, send: (body: WatchEventBody) => void): (ev: WatchEvent<KubeObject>) => void {
  const filtered = req.select.labelSelector !== undefined || req.select.fieldSelector !== undefined;
  return (ev) => {
    position.revision = ev.revision;
    const obj: KubeObject = { ...ev.value, metadata: { ...ev.value.metadata, resourceVersion: String(ev.revision) } };
    if (!filtered) return send({ type: ev.type, object: obj });
    const isIn = ev.type !== 'DELETED' && selected(obj, req.select);
    const wasIn = matching.has(ev.key);
    if (isIn) matching.add(ev.key);
    else matching.delete(ev.key);
    const type = selectionEventType(ev.type, wasIn, isIn, resumed);
    if (type) send({ type, object: obj });
  };
}

/**
 * What a filtered watch sends for a store event, given whether the object was and is in the
 * selection. A watch resumed from a revision has no record of what matched before it, so an
 * update of a matching object stays MODIFIED and every delete is sent: a client's cache ignores
 * a delete of what it does not hold, but would miss one it does.
 */
export function selectionEventType(type: WatchEvent['type'], wasIn: boolean, isIn: boolean, resumed: boolean): WatchEventBody['type'] | undefined {
  if (type === 'DELETED') return wasIn || resumed ? 'DELETED' : undefined;
  if (isIn) return wasIn || (resumed && type === 'MODIFIED') ? type : 'ADDED';
  return wasIn ? 'DELETED' : undefined;
}

function startTimers(req: WatchRequest, stream: Stream, position: { revision: number }): void {
  // The stream may have ended already (a reader too slow for the first events, a store failure):
  // stop() cleared no timer then, and one set now would tick, or re-arm itself, for nobody.
  if (stream.finished) return;
  if (req.allowBookmarks) {
    const tick = (): void => {
      stream.send({ type: 'BOOKMARK', object: { apiVersion: 'v1', kind: req.def.kind, metadata: { name: '', resourceVersion: String(position.revision) } } as KubeObject });
      if (!stream.finished) stream.timers[0] = setTimeout(tick, req.bookmarkIntervalMs);
    };
    stream.timers[0] = setTimeout(tick, req.bookmarkIntervalMs);
  }
  if (req.timeoutSeconds !== undefined) stream.timers[1] = setTimeout(stream.stop, req.timeoutSeconds * 1000);
}
