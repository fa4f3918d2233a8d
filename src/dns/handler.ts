// The query handler: pure, (request bytes, transport, index, options) → the response bytes, a
// decision to forward, or a drop. It never throws: anything dns-packet cannot decode is FORMERR
// (when a header is there to answer) or dropped (shorter than a header, or a response: answering
// responses is how two servers ping-pong forever).
import dnsPacket from 'dns-packet';
import type { Answer, DecodedPacket, OptAnswer, Question } from 'dns-packet';
import { questionName, type FastQuery } from './fast-parse.js';
import { lookupName, type DnsIndex, type NameRecords } from './records.js';
import { isUnder, normalizeName } from './names.js';
import { CLASSIC_UDP_SIZE, encodeResponse, FLAG, TCP_MAX_SIZE, withQuestionClass, type RcodeName, type ResponseParts } from './wire.js';

export type Transport = 'udp' | 'tcp';

export interface HandlerOptions {
  /** Our own EDNS0 UDP size: the cap on what a client may advertise (default 1232, DNS flag day 2020). */
  maxUdpSize: number;
  /** Upstreams are configured: names outside the zone are forwarded (else REFUSED). */
  forwarding: boolean;
}

export const DEFAULT_HANDLER_OPTIONS: HandlerOptions = { maxUdpSize: 1232, forwarding: true };

/** What the server needs to forward a question and answer the client with the result. */
export interface ForwardRequest {
  id: number;
  /** What to ask upstream: the client's question, or the ExternalName's target. */
  question: Question;
  /** What the client asked, echoed in the response. */
  clientQuestion: Question;
  flags: number; // the client's RD and CD, echoed
  edns: boolean;
  /** Our EDNS0 UDP size, said in the response's OPT record. */
  ednsSize: number;
  limit: number;
  /** CNAME records of an ExternalName chased so far: they lead the answer. */
  cnamePrefix: Answer[];
}

export type HandlerResult =
  /** cacheable: answered from the index, so the same question gives the same bytes until the index changes (answer-cache.ts). */
  | { kind: 'answer'; bytes: Buffer; rcode: RcodeName; truncated: boolean; qname?: string; qtype?: string; cacheable?: boolean }
  | { kind: 'forward'; request: ForwardRequest }
  | { kind: 'drop'; reason: string };

const MAX_CNAME_CHAIN = 8;

function respond(parts: ResponseParts, limit: number, q?: Question, cacheable = false): HandlerResult {
  const encoded = encodeResponse(parts, limit);
  const bytes = withQuestionClass(encoded.bytes, parts.question?.class);
  const truncated = encoded.truncated;
  return { kind: 'answer', bytes, rcode: parts.rcode, truncated, ...(q ? { qname: q.name, qtype: q.type } : {}), ...(cacheable ? { cacheable } : {}) };
}

function soa(index: DnsIndex): Answer {
  return {
    type: 'SOA', name: index.zone, ttl: index.negativeTtl,
    data: { mname: `ns.dns.${index.zone}`, rname: `hostmaster.${index.zone}`, serial: index.serial, refresh: 7200, retry: 1800, expire: 86400, minimum: index.negativeTtl },
  };
}

/** The records of one name for one type (ANY: all of them), owner name as the client spelled it. */
function recordsOf(index: DnsIndex, owner: string, name: string, r: NameRecords, type: string): { answers: Answer[]; glue: Answer[] } {
  const ttl = index.ttl;
  const any = type === 'ANY';
  const answers: Answer[] = [];
  const glue: Answer[] = [];
  if (any || type === 'A') for (const ip of r.a) answers.push({ type: 'A', name: owner, ttl, data: ip });
  if (any || type === 'AAAA') for (const ip of r.aaaa) answers.push({ type: 'AAAA', name: owner, ttl, data: ip });
  if (any || type === 'PTR') for (const t of r.ptr) answers.push({ type: 'PTR', name: owner, ttl, data: t });
  if (any || type === 'TXT') if (r.txt.length) answers.push({ type: 'TXT', name: owner, ttl, data: r.txt });
  if (any || type === 'SRV') {
    for (const s of r.srv) {
      answers.push({ type: 'SRV', name: owner, ttl, data: { ...s } });
      const target = index.names.get(s.target);
      if (target) glue.push(...recordsOf(index, s.target, s.target, target, 'A').answers, ...recordsOf(index, s.target, s.target, target, 'AAAA').answers);
    }
  }
  if (name === index.zone && (any || type === 'SOA')) answers.push({ ...soa(index), name: owner });
  if (name === index.zone && (any || type === 'NS')) answers.push({ type: 'NS', name: owner, ttl, data: `ns.dns.${index.zone}` });
  return { answers, glue };
}

interface Asked {
  id: number;
  q: Question;
  flags: number;
  edns: boolean;
  limit: number;
  options: HandlerOptions;
}

function base(a: Asked, rcode: RcodeName, aa: boolean): ResponseParts {
  return { id: a.id, rcode, flags: (a.flags & (FLAG.RD | FLAG.CD)) | FLAG.RA | (aa ? FLAG.AA : 0), question: a.q, ...(a.edns ? { edns: { udpPayloadSize: a.options.maxUdpSize } } : {}) };
}

/** A name the index is authoritative for: under the zone, or a PTR of a ClusterIP or endpoint. */
function answerFromIndex(index: DnsIndex, a: Asked, name: string): HandlerResult {
  const answers: Answer[] = [];
  const glue: Answer[] = [];
  let owner = a.q.name;
  let current = name;
  const qtype: string = a.q.type; // dns-packet decodes 255 as 'ANY', which its RecordType lacks
  for (let hop = 0; ; hop++) {
    const r = lookupName(index, current);
    if (!r) {
      // The rcode is the last name's (RFC 6604): a CNAME to a missing name is NXDOMAIN, the CNAME kept.
      return respond({ ...base(a, 'NXDOMAIN', true), answers, authorities: [soa(index)] }, a.limit, a.q, true);
    }
    if (r.cname && qtype !== 'CNAME' && qtype !== 'ANY') {
      answers.push({ type: 'CNAME', name: owner, ttl: index.ttl, data: r.cname });
      if (hop >= MAX_CNAME_CHAIN) break;
      if (!isUnder(r.cname, index.zone)) {
        if (!a.options.forwarding || !(a.flags & FLAG.RD)) break;
        const question: Question = { name: r.cname, type: a.q.type, class: 'IN' };
        return { kind: 'forward', request: { id: a.id, question, clientQuestion: a.q, flags: a.flags & (FLAG.RD | FLAG.CD), edns: a.edns, ednsSize: a.options.maxUdpSize, limit: a.limit, cnamePrefix: answers } };
      }
      owner = current = r.cname;
      continue;
    }
    const found = recordsOf(index, owner, current, r, qtype);
    if (r.cname) found.answers.push({ type: 'CNAME', name: owner, ttl: index.ttl, data: r.cname });
    answers.push(...found.answers);
    glue.push(...found.glue);
    break;
  }
  const authorities = answers.some((r) => r.type !== 'CNAME') || qtype === 'CNAME' || qtype === 'ANY' ? [] : [soa(index)];
  return respond({ ...base(a, 'NOERROR', true), answers, authorities, additionals: glue }, a.limit, a.q, true);
}

/** The size a response must fit: TCP's, else 512 without OPT, else the client's EDNS size within [512, ours]. */
export function responseLimit(ednsSize: number | undefined, transport: Transport, maxUdpSize: number): number {
  if (transport === 'tcp') return TCP_MAX_SIZE;
  if (ednsSize === undefined) return CLASSIC_UDP_SIZE;
  return Math.max(CLASSIC_UDP_SIZE, Math.min(ednsSize, maxUdpSize));
}

function decode(request: Buffer): DecodedPacket | undefined {
  try {
    return dnsPacket.decode(request);
  } catch {
    return undefined;
  }
}

/**
 * The question's name has a label with a '.', a control character or a byte above 0x7e in it
 * (legal on the wire, never in a host name: IDNA is ASCII): dns-packet's text names cannot say
 * where a dotted label ends, drop a dot after a newline (its /^\.|\.$/m) and turn invalid UTF-8
 * into U+FFFD, so echoing such a name would corrupt the response. FORMERR.
 */
function unrepresentableName(request: Buffer): boolean {
  for (let off = 12; off < request.length; ) {
    const len = request[off];
    if (len === 0 || len & 0xc0) return false;
    for (let i = off + 1; i <= off + len && i < request.length; i++) if (request[i] === 0x2e || request[i] < 0x20 || request[i] > 0x7e) return true;
    off += len + 1;
  }
  return false;
}

function answerQuery(packet: DecodedPacket, header: { id: number; flags: number }, transport: Transport, index: DnsIndex, options: HandlerOptions): HandlerResult {
  const opts = (packet.additionals ?? []).filter((r): r is OptAnswer => r.type === 'OPT');
  const q = packet.questions?.[0];
  const minimal: ResponseParts = { id: header.id, rcode: 'FORMERR', flags: header.flags & FLAG.RD };
  if (packet.questions?.length !== 1 || !q || opts.length > 1) return respond(minimal, CLASSIC_UDP_SIZE);
  const opt = opts[0];
  const a: Asked = { id: header.id, q, flags: header.flags, edns: !!opt, limit: responseLimit(opt?.udpPayloadSize, transport, options.maxUdpSize), options };
  if (opt && opt.ednsVersion > 0) return respond({ ...base(a, 'BADVERS', false) }, a.limit, q); // RFC 6891 6.1.3
  if ((q.class ?? 'IN') !== 'IN' || q.type === 'AXFR' || q.type === 'IXFR') return respond(base(a, 'REFUSED', false), a.limit, q);
  const name = normalizeName(q.name);
  if (isUnder(name, index.zone) || index.names.has(name)) return answerFromIndex(index, a, name);
  if (!options.forwarding || !(header.flags & FLAG.RD)) return respond(base(a, 'REFUSED', false), a.limit, q);
  return { kind: 'forward', request: { id: header.id, question: q, clientQuestion: q, flags: header.flags & (FLAG.RD | FLAG.CD), edns: a.edns, ednsSize: options.maxUdpSize, limit: a.limit, cnamePrefix: [] } };
}

/** The question and OPT of fast-parse.ts as dns-packet would have decoded them. */
function packetOf(request: Buffer, fast: FastQuery): DecodedPacket {
  const q = { name: questionName(request, fast), type: fast.qtypeName, class: 'IN' } as Question;
  const opt = fast.opt && { type: 'OPT', name: '.', udpPayloadSize: fast.opt.udpPayloadSize, ednsVersion: fast.opt.ednsVersion } as OptAnswer;
  return { questions: [q], additionals: opt ? [opt] : [] } as DecodedPacket;
}

/** fast: the same request as read by fastParse (skips dns-packet's decode; the answer is the same). */
export function handleQuery(request: Buffer, transport: Transport, index: DnsIndex, options: HandlerOptions = DEFAULT_HANDLER_OPTIONS, fast?: FastQuery): HandlerResult {
  try {
    if (request.length < 12) return { kind: 'drop', reason: `${request.length} bytes, shorter than a DNS header` };
    const header = { id: request.readUInt16BE(0), flags: request.readUInt16BE(2) };
    if (header.flags & 0x8000) return { kind: 'drop', reason: 'a response (QR set), not a query' };
    const opcode = (header.flags >> 11) & 0xf;
    if (opcode !== 0) return respond({ id: header.id, opcode, rcode: 'NOTIMP', flags: header.flags & FLAG.RD }, CLASSIC_UDP_SIZE);
    const packet = fast ? packetOf(request, fast) : unrepresentableName(request) ? undefined : decode(request);
    if (!packet) return respond({ id: header.id, rcode: 'FORMERR', flags: header.flags & FLAG.RD }, CLASSIC_UDP_SIZE);
    return answerQuery(packet, header, transport, index, options);
  } catch (err) {
    // Unreachable by design; kept so a codec surprise costs one query, never the server.
    return { kind: 'drop', reason: `handler failed: ${(err as Error).message}` };
  }
}

/** What an upstream answered (or the cache kept), ages already applied to TTLs. */
export interface UpstreamAnswer {
  rcode: RcodeName;
  answers: Answer[];
  authorities: Answer[];
  additionals: Answer[];
}

/** The client's response to a forwarded question: its id and question, the upstream's records. */
export function forwardedResponse(req: ForwardRequest, up: UpstreamAnswer | undefined): Buffer {
  const clientQuestion = req.clientQuestion;
  const flags = req.flags | FLAG.RA;
  const edns = req.edns ? { edns: { udpPayloadSize: req.ednsSize } } : {};
  const parts: ResponseParts = up
    ? { id: req.id, rcode: up.rcode, flags, question: clientQuestion, answers: [...req.cnamePrefix, ...up.answers], authorities: up.authorities, additionals: up.additionals, ...edns }
    : { id: req.id, rcode: 'SERVFAIL', flags, question: clientQuestion, answers: req.cnamePrefix, ...edns };
  return encodeResponse(parts, req.limit).bytes;
}
