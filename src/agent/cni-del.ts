// The CNI server's fast DEL (issue 18 item 4). Deleting a veth makes the kernel wait for an RCU
// grace period (~20 ms on this machine: `ip link del` 18-23 ms where `ip link set down` is 0.3 ms),
// and the agent runs CNI work on one thread, so 50 DELs in flight waited ~50 × 20 ms in turn.
//
// So a DEL through the agent is answered once its host veth is down: the pod end has no carrier,
// no frame passes either way, and its IP, still reserved, answers nothing. The veth is moved to link
// group DEL_LINK_GROUP, and one RTM_DELLINK of that group deletes every veth detached since the last
// one (they share one grace period), sent from a thread of libuv's pool so that the agent keeps
// answering meanwhile (the kernel does the whole deletion inside that sendto). Only then are
// masquerade entries and IPs released, so an IP is never reusable while a link that held it exists.
// The container's next CNI request waits for all of it (cni-server.ts chains it on the container's
// queue).
//
// A journal (one file per pending DEL in <run-dir>/cni-del, written before the veth is touched) lets
// a restarted agent finish what a killed one left: replay() runs before the socket serves. The run
// dir is a tmpfs: a reboot loses the journal together with every veth, and the reservations left
// then are the runtime's CNI GC's to release (as with host-local). CNI GC also deletes the veths of
// stale owners, the backstop should a journal be lost.
import fs from 'node:fs';
import path from 'node:path';
import { parseConfig, type NetConf } from '../cni/config.js';
import { detachHostVeth, releaseDel } from '../cni/del.js';
import { parseEnv, type CniEnv } from '../cni/env.js';
import { hostVethName } from '../cni/names.js';
import { Handle } from '../netlink/handle.js';

/** A group delete that found no link (ENODEV), or another program's undeletable one (EOPNOTSUPP). */
const GROUP_DEL_OK = new Set(['ENODEV', 'EOPNOTSUPP']);

/** The link group of host veths the agent is deleting ("pwde"; `ip link show group 1886872677`). */
export const DEL_LINK_GROUP = 0x70776465;

interface JournalEntry {
  /** The DEL's CNI_* variables and config, as the request had them: replay parses them again. */
  vars: Record<string, string>;
  stdin: string;
  /** The host veth's ifindex when detached: a veth of the same name with another index is a later ADD's. */
  index?: number;
}

interface Pending {
  file: string;
  env: CniEnv;
  conf: NetConf;
  index?: number;
  settle: (err?: Error) => void;
}

export interface CniDelOptions {
  journalDir: string;
  /** The netlink handle of the node's netns (default: one opened on first use, in this thread's netns). */
  openHandle?: () => Handle;
  /**
   * How long detached veths wait for others to share their deletion (default 0: the next turn of the
   * event loop, so DELs that arrived together or during the last deletion share it). Tests hold it.
   */
  batchMs?: number;
  /** A release step failed (logged; the journal entry stays and the next start retries it). */
  onError?: (err: Error, what: { containerId: string; ifname: string }) => void;
}

export class CniDel {
  private queue: Pending[] = [];
  private scheduled = false;
  private flushing?: Promise<void>;
  /** DELs of the batch being deleted. */
  private deleting = 0;
  private handle?: Handle;
  /** Only the group deletion uses it, one at a time, off the main thread (its socket is busy meanwhile). */
  private deleter?: Handle;
  private readonly counts = { deleted: 0, batches: 0, failed: 0 };

  constructor(private readonly opts: CniDelOptions) {}

  /** DELs answered whose veth or IP is not released yet (waiting, or in the deletion under way). */
  get pending(): number {
    return this.queue.length + this.deleting;
  }

  stats(): { pending: number; deleted: number; batches: number; failed: number } {
    return { pending: this.pending, ...this.counts };
  }

  /**
   * The part of a DEL the runtime waits for: journal, veth down. The promise settles once the veth
   * is gone and the IP released (rejects when a release step failed).
   */
  detach(vars: Readonly<Record<string, string>>, stdin: string, env: CniEnv, conf: NetConf): Promise<void> {
    const host = this.host();
    const name = hostVethName(env.containerId, env.ifname);
    const index = host.linkFind(name)?.index;
    const file = this.journal({ vars: { ...vars }, stdin, ...(index !== undefined ? { index } : {}) }, name);
    try {
      if (index !== undefined) detachHostVeth(host, index, DEL_LINK_GROUP);
    } catch (err) {
      fs.rmSync(file, { force: true });
      throw err;
    }
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ file, env, conf, ...(index !== undefined ? { index } : {}), settle: (err) => (err ? reject(err) : resolve()) });
      this.schedule();
    });
  }

  /** Resolves once every DEL answered so far is finished (at shutdown; before an ADD is retried). */
  async drain(): Promise<void> {
    while (this.queue.length > 0 || this.flushing) {
      if (!this.flushing) this.kick();
      await this.flushing;
    }
  }

  /**
   * Finishes the DELs a previous agent answered and did not finish (before the socket serves). A
   * veth of the same name with another ifindex is a later ADD's (the plugin's own, while no agent
   * ran): that entry is dropped and nothing of it released. Returns how many were finished.
   */
  replay(): number {
    let names: string[];
    try {
      names = fs.readdirSync(this.opts.journalDir).filter((n) => n.endsWith('.json'));
    } catch (err) {
      if ((err as { code?: string }).code === 'ENOENT') return 0;
      throw err;
    }
    const host = this.host();
    let finished = 0;
    for (const n of names) {
      const file = path.join(this.opts.journalDir, n);
      let entry: JournalEntry;
      let env: CniEnv;
      let conf: NetConf;
      try {
        entry = JSON.parse(fs.readFileSync(file, 'utf8')) as JournalEntry;
        env = parseEnv(entry.vars);
        conf = parseConfig(entry.stdin, { cniArgs: env.args });
      } catch (err) {
        this.opts.onError?.(new Error(`CNI DEL journal entry ${file} is unreadable, removed (CNI GC releases what it named): ${(err as Error).message}`), { containerId: '', ifname: '' });
        fs.rmSync(file, { force: true });
        continue;
      }
      try {
        const link = host.linkFind(hostVethName(env.containerId, env.ifname));
        if (link && link.index !== entry.index) {
          fs.rmSync(file, { force: true });
          continue;
        }
        if (link) this.deleteLinks(host, [link.index]);
        releaseDel(env, conf);
        fs.rmSync(file, { force: true });
        finished++;
      } catch (err) {
        // Kept for the next start; the agent starts anyway (CNI GC also finds the owner stale).
        this.counts.failed++;
        this.opts.onError?.(err as Error, { containerId: env.containerId, ifname: env.ifname });
      }
    }
    return finished;
  }

  /** Closes the handles (after drain(): what is still pending stays in the journal for the next start). */
  close(): void {
    this.handle?.close();
    this.deleter?.close();
    this.handle = this.deleter = undefined;
  }

  private host(): Handle {
    return (this.handle ??= (this.opts.openHandle ?? (() => Handle.open()))());
  }

  private schedule(): void {
    if (this.scheduled || this.flushing) return; // a running flush schedules the next when it ends
    this.scheduled = true;
    // After the I/O already read: DELs that arrived together (or during the last deletion) share one.
    const ms = this.opts.batchMs ?? 0;
    if (ms > 0) setTimeout(() => this.kick(), ms);
    else setImmediate(() => this.kick());
  }

  private kick(): void {
    this.scheduled = false;
    if (this.flushing || this.queue.length === 0) return;
    this.flushing = this.flush().finally(() => {
      this.flushing = undefined;
      if (this.queue.length > 0) this.schedule();
    });
  }

  /** Deletes every veth detached so far in one request (off the main thread), then releases each DEL. */
  private async flush(): Promise<void> {
    const batch = this.queue;
    this.queue = [];
    this.deleting = batch.length;
    try {
      await this.finish(batch);
    } finally {
      this.deleting = 0;
    }
  }

  private async finish(batch: Pending[]): Promise<void> {
    try {
      await this.deleteLinksAsync(batch.filter((p) => p.index !== undefined).map((p) => p.index!));
    } catch (err) {
      // The kernel refused: the veths stay down and their IPs reserved; the journal keeps these DELs
      // for the next start (and CNI GC finds their owners stale).
      for (const p of batch) {
        this.counts.failed++;
        this.opts.onError?.(err as Error, { containerId: p.env.containerId, ifname: p.env.ifname });
        p.settle(err as Error);
      }
      return;
    }
    this.counts.batches++;
    for (const p of batch) {
      try {
        releaseDel(p.env, p.conf);
        fs.rmSync(p.file, { force: true });
        this.counts.deleted++;
        p.settle();
      } catch (err) {
        this.counts.failed++;
        this.opts.onError?.(err as Error, { containerId: p.env.containerId, ifname: p.env.ifname });
        p.settle(err as Error);
      }
    }
  }

  private async deleteLinksAsync(indexes: number[]): Promise<void> {
    if (indexes.length === 0) return;
    const deleter = (this.deleter ??= (this.opts.openHandle ?? (() => Handle.open()))());
    try {
      await deleter.linkDelGroupAsync(DEL_LINK_GROUP);
    } catch (err) {
      if (!GROUP_DEL_OK.has((err as { code?: string }).code ?? '')) throw err;
    }
    this.deleteRemaining(this.host(), indexes);
  }

  private journal(entry: JournalEntry, name: string): string {
    fs.mkdirSync(this.opts.journalDir, { recursive: true, mode: 0o700 });
    const file = path.join(this.opts.journalDir, `${name}.json`);
    const tmp = `${file}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(entry), { mode: 0o600 });
    fs.renameSync(tmp, file);
    return file;
  }

  /**
   * The group's links in one request; then any of `indexes` still there (another program's link in
   * the group refused the group delete with EOPNOTSUPP) one by one. ENODEV: already gone.
   */
  private deleteLinks(host: Handle, indexes: number[]): void {
    if (indexes.length === 0) return;
    try {
      host.linkDelGroup(DEL_LINK_GROUP);
    } catch (err) {
      if (!GROUP_DEL_OK.has((err as { code?: string }).code ?? '')) throw err;
    }
    this.deleteRemaining(host, indexes);
  }

  /** Each of `indexes` still there, one by one: a release never happens while its link exists. */
  private deleteRemaining(host: Handle, indexes: number[]): void {
    for (const index of indexes) {
      if (!host.linkFind(index)) continue;
      try {
        host.linkDel(index);
      } catch (err) {
        if ((err as { code?: string }).code !== 'ENODEV') throw err;
      }
    }
  }
}
