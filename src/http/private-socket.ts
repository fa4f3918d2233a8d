// Unix sockets only their owner can connect to, from the moment they exist. A chmod(0600) after
// listen() leaves a window in which the socket has the umask's mode (0777 & ~umask: anyone may
// connect under umask 0 or 002). net.Server.listen(path) binds before it returns, so a umask of
// 0177 set around that one synchronous call makes the kernel create the socket 0600, and no other
// file of the process is created meanwhile.
import type net from 'node:net';

/** Runs fn (synchronous) with the process umask set to mask, then restores it. */
export function withUmask<T>(mask: number, fn: () => T): T {
  const previous = process.umask(mask);
  try {
    return fn();
  } finally {
    process.umask(previous);
  }
}

/** The server, with listen() binding under umask 0177: a unix socket is created 0600 (TCP listens are unaffected). */
export function privateListen<S extends net.Server>(server: S): S {
  const listen = server.listen.bind(server) as (...args: unknown[]) => S;
  (server as unknown as { listen: (...args: unknown[]) => S }).listen = (...args) => withUmask(0o177, () => listen(...args));
  return server;
}
