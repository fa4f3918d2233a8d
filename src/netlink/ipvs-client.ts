// IpvsClient: the IPVS generic netlink family over one NETLINK_GENERIC socket, bound (like Handle)
// to the netns it was opened in, since IPVS state is per netns. The family ID is resolved by name
// once at open (a missing family is GenlFamilyNotFoundError: modprobe ip_vs). Kernel errors become
// IpvsError, naming the operation and the object in ipvsadm's words.
import { NETLINK_GENERIC } from './constants.js';
import { CodecError, type NlMsg } from './codec.js';
import { NetlinkError, netlinkHint } from './errors.js';
import { genlResolveFamily, type GenlFamily } from './genl.js';
import {
  describeIpvsDestination, describeIpvsService, encodeDelDestination, encodeDelService, encodeFlush, encodeGetConfig,
  encodeGetDestinations, encodeGetInfo, encodeGetService, encodeGetServices, encodeNewDestination, encodeNewService,
  encodeSetConfig, encodeSetDestination, encodeSetService, ipvsServiceFamily, type IpvsConfig, type IpvsDestination,
  type IpvsDestinationKey, type IpvsDestinationSpec, type IpvsInfo, type IpvsService, type IpvsServiceKey,
  type IpvsServiceSpec,
} from './ipvs.js';
import { decodeConfig, decodeDestination, decodeInfo, decodeService } from './ipvs-decode.js';
import { IPVS_GENL_NAME } from './ipvs-constants.js';
import { NetlinkSocket } from './socket.js';
import type { SocketOptions } from './transport.js';
import { strerror } from '../sys/libc.js';

const EEXIST = 17;
const ENOENT = 2;
const ESRCH = 3;

/**
 * exists: the service (or real server) is already there; no-service: the kernel has no such
 * virtual service (ESRCH); no-destination: no such real server in it; no-scheduler: the scheduler
 * (or persistence engine) module does not exist (ENOENT on add/edit service); other: the rest.
 */
export type IpvsErrorReason = 'exists' | 'no-service' | 'no-destination' | 'no-scheduler' | 'other';

/** e.g. `ipvs add service TCP 10.96.0.5:80: File exists (EEXIST): the virtual service already exists: ...` */
export class IpvsError extends NetlinkError {
  readonly reason: IpvsErrorReason;

  constructor(errno: number, operation: string, object: string, extack?: string, scheduler?: string) {
    super(errno, operation, object, extack);
    this.name = 'IpvsError';
    const onService = operation.endsWith('service');
    this.reason = errno === EEXIST ? 'exists'
      : errno === ESRCH ? 'no-service'
        : errno === ENOENT ? (onService ? 'no-scheduler' : 'no-destination')
          : 'other';
    const kernel = extack ? `: kernel says "${extack}"` : '';
    const hint = ipvsHint(this.reason, this.code, onService, scheduler);
    this.message = `ipvs ${operation} ${object}: ${strerror(errno)} (${this.code})${kernel}${hint ? `: ${hint}` : ''}`;
  }
}

function ipvsHint(reason: IpvsErrorReason, code: string, onService: boolean, scheduler?: string): string | undefined {
  switch (reason) {
    case 'exists':
      return onService ? 'the virtual service already exists: edit it, or delete it first' : 'the real server is already in this service: edit it instead';
    case 'no-service':
      return 'no such virtual service (ipvsadm -Ln lists them)';
    case 'no-destination':
      return 'no such real server in this service';
    case 'no-scheduler':
      return scheduler
        ? `scheduler "${scheduler}" (or the persistence engine) not found: is the module available (modprobe ip_vs_${scheduler})?`
        : 'scheduler or persistence engine not found';
    default:
      return netlinkHint(code);
  }
}

export class IpvsClient {
  readonly family: GenlFamily;
  private readonly sock: NetlinkSocket;
  private readonly ownsSocket: boolean;

  private constructor(sock: NetlinkSocket, family: GenlFamily, ownsSocket: boolean) {
    this.sock = sock;
    this.family = family;
    this.ownsSocket = ownsSocket;
  }

  /** A client on the netns given (name under /run/netns, path, or open NetnsRef); default: ours. */
  static open(opts: SocketOptions = {}): IpvsClient {
    const sock = NetlinkSocket.open(NETLINK_GENERIC, opts);
    try {
      return new IpvsClient(sock, genlResolveFamily(sock, IPVS_GENL_NAME), true);
    } catch (err) {
      sock.close();
      throw err;
    }
  }

  /** Over an existing NETLINK_GENERIC socket (which close() then leaves open). */
  static over(sock: NetlinkSocket): IpvsClient {
    return new IpvsClient(sock, genlResolveFamily(sock, IPVS_GENL_NAME), false);
  }

  close(): void {
    if (this.ownsSocket) this.sock.close();
  }

  /** IPVS version and connection table size (ipvsadm's first line). */
  info(): IpvsInfo {
    return decodeInfo(this.one(this.exec(encodeGetInfo(), 'get info', 'IPVS'), 'get info'));
  }

  /** Every virtual service of the netns, with its stats. */
  listServices(): IpvsService[] {
    return this.dump(encodeGetServices(), 'list services', 'all services').map((m) => decodeService(m.payload));
  }

  /** Throws IpvsError (reason no-service) when there is none. */
  getService(key: IpvsServiceKey): IpvsService {
    return decodeService(this.one(this.exec(encodeGetService(key), 'get service', describeIpvsService(key)), 'get service'));
  }

  findService(key: IpvsServiceKey): IpvsService | undefined {
    try {
      return this.getService(key);
    } catch (err) {
      if (err instanceof IpvsError && err.reason === 'no-service') return undefined;
      throw err;
    }
  }

  addService(spec: IpvsServiceSpec): void {
    this.exec(encodeNewService(spec), 'add service', describeIpvsService(spec), spec.scheduler);
  }

  /** Sets every option of the service to spec's (flags, timeout and netmask included). */
  editService(spec: IpvsServiceSpec): void {
    this.exec(encodeSetService(spec), 'edit service', describeIpvsService(spec), spec.scheduler);
  }

  /** Deletes the service and its real servers. */
  delService(key: IpvsServiceKey): void {
    this.exec(encodeDelService(key), 'del service', describeIpvsService(key));
  }

  /** The real servers of a service; the kernel answers an empty list for a service that does not exist. */
  listDestinations(key: IpvsServiceKey): IpvsDestination[] {
    const family = ipvsServiceFamily(key);
    const replies = this.dump(encodeGetDestinations(key), 'list destinations', describeIpvsService(key));
    return replies.map((m) => decodeDestination(m.payload, family));
  }

  addDestination(key: IpvsServiceKey, dest: IpvsDestinationSpec): void {
    this.exec(encodeNewDestination(key, dest), 'add destination', describeIpvsDestination(key, dest));
  }

  editDestination(key: IpvsServiceKey, dest: IpvsDestinationSpec): void {
    this.exec(encodeSetDestination(key, dest), 'edit destination', describeIpvsDestination(key, dest));
  }

  delDestination(key: IpvsServiceKey, dest: IpvsDestinationKey): void {
    this.exec(encodeDelDestination(key, dest), 'del destination', describeIpvsDestination(key, dest));
  }

  /**
   * Many changes in order, batched (NetlinkSocket.execBatch: a few hundred per datagram, an ACK
   * only at the end of each): what a sync of thousands of services needs. Returns, per change,
   * undefined or its IpvsError; a failure does not stop the later changes.
   */
  applyBatch(changes: readonly IpvsChange[]): (IpvsError | undefined)[] {
    const reqs = changes.map((c) => {
      const [payload, op, object, scheduler] = changeRequest(c);
      return { type: this.family.id, flags: 0, payload, ctx: { op: `ipvs ${op}`, object }, scheduler, op };
    });
    return this.sock.execBatch(reqs).map((err, i) => (err ? (ipvsError(err, reqs[i]!.op, reqs[i]!.ctx.object, reqs[i]!.scheduler) as IpvsError) : undefined));
  }

  /** Deletes every virtual service of the netns (ipvsadm -C): all of them, not only podwire's. */
  flush(): void {
    this.exec(encodeFlush(), 'flush', 'all services');
  }

  getConfig(): IpvsConfig {
    return decodeConfig(this.one(this.exec(encodeGetConfig(), 'get config', 'timeouts'), 'get config'));
  }

  /** Timeouts left out keep their value. */
  setConfig(config: Partial<IpvsConfig>): void {
    const object = `timeouts ${['tcp', 'tcpFin', 'udp'].map((k) => `${k}=${config[k as keyof IpvsConfig] ?? '-'}`).join(' ')}`;
    this.exec(encodeSetConfig(config), 'set config', object);
  }

  private exec(payload: Buffer, op: string, object: string, scheduler?: string): NlMsg[] {
    try {
      return this.sock.exec(this.family.id, 0, payload, { op: `ipvs ${op}`, object });
    } catch (err) {
      throw ipvsError(err, op, object, scheduler);
    }
  }

  private dump(payload: Buffer, op: string, object: string): NlMsg[] {
    try {
      return this.sock.dump(this.family.id, payload, { op: `ipvs ${op}`, object }).filter((m) => m.type === this.family.id);
    } catch (err) {
      throw ipvsError(err, op, object);
    }
  }

  private one(replies: NlMsg[], op: string): Buffer {
    const reply = replies.find((m) => m.type === this.family.id);
    if (!reply) throw new CodecError(`ipvs ${op}: the kernel acknowledged without an answer`);
    return reply.payload;
  }
}

/** One change of applyBatch. */
export type IpvsChange =
  | { op: 'addService' | 'editService'; spec: IpvsServiceSpec }
  | { op: 'delService'; key: IpvsServiceKey }
  | { op: 'addDestination' | 'editDestination'; key: IpvsServiceKey; dest: IpvsDestinationSpec }
  | { op: 'delDestination'; key: IpvsServiceKey; dest: IpvsDestinationKey };

function changeRequest(c: IpvsChange): [Buffer, string, string, string?] {
  switch (c.op) {
    case 'addService': return [encodeNewService(c.spec), 'add service', describeIpvsService(c.spec), c.spec.scheduler];
    case 'editService': return [encodeSetService(c.spec), 'edit service', describeIpvsService(c.spec), c.spec.scheduler];
    case 'delService': return [encodeDelService(c.key), 'del service', describeIpvsService(c.key)];
    case 'addDestination': return [encodeNewDestination(c.key, c.dest), 'add destination', describeIpvsDestination(c.key, c.dest)];
    case 'editDestination': return [encodeSetDestination(c.key, c.dest), 'edit destination', describeIpvsDestination(c.key, c.dest)];
    case 'delDestination': return [encodeDelDestination(c.key, c.dest), 'del destination', describeIpvsDestination(c.key, c.dest)];
  }
}

function ipvsError(err: unknown, op: string, object: string, scheduler?: string): unknown {
  if (!(err instanceof NetlinkError) || err instanceof IpvsError) return err;
  return new IpvsError(err.errno, op, object, err.extack, scheduler);
}
