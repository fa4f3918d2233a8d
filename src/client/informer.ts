// list + watch, as client-go's reflector/informer: list once, keep a cache, watch from the list's
// resourceVersion, resume from the last seen revision when a stream ends, relist when the server
// answers 410 (history gone), and back off (exponential, jittered, capped) while the server is
// unreachable — the cache and the caller's state stay as they were meanwhile.
import type { KubeObject, WatchEventBody } from '../api/objects.js';
import { ApiClientError, type ApiClient, type ResourceRef, type WatchStream } from './api-client.js';

export interface InformerHandlers<T> {
  onAdd?(obj: T): void;
  onUpdate?(old: T, obj: T): void;
  onDelete?(obj: T): void;
  /** After each (re)list has been applied to the cache. */
  onSynced?(): void;
  /** Each time a watch stream is open (after a list, or resumed after an outage without one). */
  onWatching?(): void;
  /** Failures that the informer retries by itself (for logs). */
  onError?(err: Error, retryInMs: number): void;
}

export interface InformerOptions<T extends KubeObject = KubeObject> {
  labelSelector?: string;
  fieldSelector?: string;
  initialBackoffMs?: number; // default 200
  maxBackoffMs?: number; // default 10 s
  /**
   * Applied to every listed or watched object before it is cached or handed on (client-go's
   * SetTransform): a consumer that needs a few fields keeps only those, so a 10,000-object cache
   * does not hold metadata nobody reads. Must keep metadata.name, namespace and resourceVersion.
   */
  transform?: (obj: T) => T;
}

export const objectKey = (o: KubeObject): string => (o.metadata.namespace ? `${o.metadata.namespace}/${o.metadata.name}` : o.metadata.name);

export class Informer<T extends KubeObject> {
  readonly cache = new Map<string, T>();
  resourceVersion = '';
  synced = false;
  /** Lists done (1 + relists after 410); for tests and metrics. */
  lists = 0;
  private stream: WatchStream | undefined;
  private stopped = false;
  private failures = 0;
  private wake: (() => void) | undefined;
  private loop: Promise<void> | undefined;
  private syncWaiters: { resolve: () => void; reject: (e: Error) => void }[] = [];
  /** Aborted by stop(): ends the list or watch request in flight, even one still connecting. */
  private readonly abort = new AbortController();

  constructor(
    private readonly client: ApiClient,
    private readonly ref: ResourceRef,
    private readonly handlers: InformerHandlers<T> = {},
    private readonly opts: InformerOptions<T> = {},
  ) {}

  start(): void {
    this.loop ??= this.run();
  }

  /**
   * Resolves once nothing of this informer can run any more: no request (connecting, waiting or
   * streaming), no backoff timer, no handler call. Pending waitForSync() calls reject.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    this.abort.abort();
    this.stream?.close();
    this.wake?.();
    await this.loop;
    this.syncWaiters.splice(0).forEach((w) => w.reject(new Error(`${this.ref.plural}: the informer was stopped before it synced`)));
  }

  waitForSync(timeoutMs = 30_000): Promise<void> {
    if (this.synced) return Promise.resolve();
    if (this.stopped) return Promise.reject(new Error(`${this.ref.plural}: the informer was stopped before it synced`));
    return new Promise((resolve, reject) => {
      const waiter = {
        resolve: () => {
          clearTimeout(t);
          resolve();
        },
        reject: (e: Error) => {
          clearTimeout(t);
          reject(e);
        },
      };
      const t = setTimeout(() => {
        this.syncWaiters = this.syncWaiters.filter((w) => w !== waiter);
        reject(new Error(`${this.ref.plural}: not synced within ${timeoutMs} ms`));
      }, timeoutMs);
      this.syncWaiters.push(waiter);
    });
  }

  private selectors(): Record<string, string> {
    return { ...(this.opts.labelSelector ? { labelSelector: this.opts.labelSelector } : {}), ...(this.opts.fieldSelector ? { fieldSelector: this.opts.fieldSelector } : {}) };
  }

  private async run(): Promise<void> {
    let needList = true;
    while (!this.stopped) {
      try {
        if (needList) {
          await this.relist();
          needList = false;
        }
        if (this.stopped) break;
        await this.watchOnce();
        this.failures = 0;
      } catch (e) {
        if (this.stopped) break;
        if (e instanceof ApiClientError && e.code === 410) {
          needList = true; // history gone: only a fresh list is consistent
          continue;
        }
        await this.backoff(e as Error);
      }
    }
  }

  private async relist(): Promise<void> {
    const list = await this.client.list<T>(this.ref, this.selectors(), { signal: this.abort.signal });
    if (this.stopped) return;
    this.lists++;
    const seen = new Set<string>();
    const transform = this.opts.transform;
    for (const raw of list.items) {
      const obj = transform ? transform(raw) : raw;
      const key = objectKey(obj);
      seen.add(key);
      this.apply(this.cache.has(key) ? 'MODIFIED' : 'ADDED', obj);
    }
    for (const [key, obj] of [...this.cache]) if (!seen.has(key)) this.apply('DELETED', obj);
    this.resourceVersion = list.metadata.resourceVersion;
    this.synced = true;
    this.handlers.onSynced?.();
    this.syncWaiters.splice(0).forEach((w) => w.resolve());
  }

  private apply(type: 'ADDED' | 'MODIFIED' | 'DELETED', obj: T): void {
    const key = objectKey(obj);
    const old = this.cache.get(key);
    if (type === 'DELETED') {
      if (!old) return;
      this.cache.delete(key);
      this.handlers.onDelete?.(obj);
      return;
    }
    if (old && old.metadata.resourceVersion === obj.metadata.resourceVersion) return;
    this.cache.set(key, obj);
    if (old) this.handlers.onUpdate?.(old, obj);
    else this.handlers.onAdd?.(obj);
  }

  /** One watch stream, from this.resourceVersion until it ends; a 410 inside the stream throws. */
  private async watchOnce(): Promise<void> {
    let expired: ApiClientError | undefined;
    const query = { ...this.selectors(), resourceVersion: this.resourceVersion, allowWatchBookmarks: 'true' };
    const stream = await this.client.watch(this.ref, query, (ev: WatchEventBody) => {
      if (this.stopped) return;
      if (ev.type === 'ERROR') {
        const status = ev.object as { code?: number; message?: string };
        expired = new ApiClientError(`watch ${this.ref.plural}: ${status.message ?? 'error event'}`, status.code ?? 500);
        stream.close();
        return;
      }
      const obj = ev.object as T;
      if (obj.metadata?.resourceVersion) this.resourceVersion = obj.metadata.resourceVersion;
      if (ev.type !== 'BOOKMARK') this.apply(ev.type, this.opts.transform ? this.opts.transform(obj) : obj);
    }, { signal: this.abort.signal });
    this.stream = stream;
    if (this.stopped) stream.close(); // stop() came while the watch was being opened
    this.failures = 0;
    if (!this.stopped) this.handlers.onWatching?.();
    await stream.done;
    this.stream = undefined;
    if (expired) throw expired;
  }

  private async backoff(err: Error): Promise<void> {
    const base = this.opts.initialBackoffMs ?? 200;
    const delay = Math.min(this.opts.maxBackoffMs ?? 10_000, base * 2 ** Math.min(this.failures, 16));
    this.failures++;
    const ms = Math.round(delay * (0.5 + Math.random() / 2));
    this.handlers.onError?.(err, ms);
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
    this.wake = undefined;
  }
}
