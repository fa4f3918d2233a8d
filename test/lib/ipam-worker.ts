// A separate process driving the disk IPAM, for the concurrency and kill -9 tests.
// Usage: node ipam-worker.js MODE JSON
//   allocate {dataDir, network, owner, rangeSets, lockTimeoutMs?, barrier?}
//                                                                  one ADD; prints the allocations as JSON. With
//                                                                  barrier: prints "ready", waits for a stdin line
//   loop     {dataDir, network, prefix, rangeSets}                 ADD owner prefix-0, -1, ... until killed, DEL
//                                                                  about half of them; prints "ready" after the first
//   hold     {dataDir, network}                                    takes the network's lock, prints "locked", sleeps
//                                                                  until killed
// An IpamError exits 3 with {"kind", "message"} on stdout.
import { FileIpam } from '../../src/ipam/ipam.js';
import { DiskStore } from '../../src/ipam/disk-store.js';
import { IpamError, type Owner, type RangeSet } from '../../src/ipam/types.js';
import { parentAlive } from './orphan-guard.js';

interface Args {
  dataDir: string;
  network: string;
  owner?: Owner;
  prefix?: string;
  rangeSets?: RangeSet[];
  lockTimeoutMs?: number;
  barrier?: boolean;
}

function main(mode: string | undefined, args: Args): void {
  const ipam = new FileIpam(args.dataDir, { lockTimeoutMs: args.lockTimeoutMs ?? 10_000 });
  if (mode === 'allocate') {
    const go = (): void => void process.stdout.write(JSON.stringify(ipam.allocate(args.network, args.owner!, args.rangeSets!)) + '\n');
    if (!args.barrier) return go();
    // Start-up done: wait for the test's "go" so that all workers contend for the lock at once.
    process.stdout.write('ready\n');
    process.stdin.once('data', () => {
      process.stdin.destroy();
      guarded(go);
    });
    return;
  }
  if (mode === 'loop') {
    for (let i = 0; parentAlive(); i++) {
      ipam.allocate(args.network, { containerId: `${args.prefix}-${i}`, ifname: 'eth0' }, args.rangeSets!);
      if (i === 0) process.stdout.write('ready\n');
      if (i > 0 && Math.random() < 0.5) ipam.release(args.network, { containerId: `${args.prefix}-${i - 1}`, ifname: 'eth0' });
    }
  }
  if (mode === 'hold') {
    new DiskStore(args.dataDir, args.network).lock();
    process.stdout.write('locked\n');
    while (parentAlive()) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
    return;
  }
  throw new Error(`unknown mode ${mode}`);
}

function guarded(fn: () => void): void {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof IpamError)) throw e;
    process.stdout.write(JSON.stringify({ kind: e.kind, message: e.message }) + '\n');
    process.exitCode = 3;
  }
}

guarded(() => main(process.argv[2], JSON.parse(process.argv[3] ?? '{}') as Args));
