// How the CLI reaches a node's agent over its authenticated HTTPS debug endpoint (src/agent
// README: "The HTTPS debug endpoint"): the Node publishes podwire.io/agent-endpoint (https://IP:PORT)
// and podwire.io/agent-cert-sha256; the CLI pins the certificate by that fingerprint (the agent's
// certificate is self-signed: no CA vouches for it) and sends the admin token of its client
// config. First a bare TLS handshake fetches the certificate and checks its fingerprint (no
// request, no token); then the request trusts exactly that certificate, checking the fingerprint
// again, so the token goes only to the holder of the published certificate's key. In a lab the
// same requests go over a unix socket of the lab's underlay forwarder (socketPath) instead of a
// TCP connection: TLS still runs end to end with the agent.
import { createHash } from 'node:crypto';
import tls from 'node:tls';
import { NODE_ANNOTATIONS, type Node } from '../../api/objects.js';
import { ApiClient } from '../../client/api-client.js';
import { isIp } from '../../net/ip.js';

export interface AgentHttpsEndpoint {
  node: string;
  url: string;
  certSha256: string;
  /** The lab: the underlay forwarder's unix socket for this node. */
  socketPath?: string;
}

export type PublishedEndpoint = { ok: true; url: string; certSha256: string } | { ok: false; error: string };

/** The endpoint a Node publishes, checked: an https URL with an IP and a port, and a SHA-256 in hex. */
export function publishedEndpoint(node: Node): PublishedEndpoint {
  const a = node.metadata.annotations ?? {};
  const name = node.metadata.name;
  const url = a[NODE_ANNOTATIONS.agentEndpoint];
  const sha = a[NODE_ANNOTATIONS.agentCertSha256];
  if (url === undefined) return { ok: false, error: `node ${name} publishes no ${NODE_ANNOTATIONS.agentEndpoint}: its agent runs without --debug-listen (start it with --debug-listen :10262), or has not registered yet` };
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    parsed = undefined;
  }
  if (!parsed || parsed.protocol !== 'https:' || !parsed.port || !isIp(parsed.hostname, 4) || parsed.pathname !== '/') return { ok: false, error: `node ${name}: ${NODE_ANNOTATIONS.agentEndpoint} ${JSON.stringify(url)} is not https://IPV4:PORT` };
  if (sha === undefined || !/^[0-9a-f]{64}$/.test(sha)) return { ok: false, error: `node ${name}: ${NODE_ANNOTATIONS.agentCertSha256} ${JSON.stringify(sha ?? '')} is not a SHA-256 in lowercase hex (the agent publishes it with its endpoint)` };
  return { ok: true, url: `https://${parsed.hostname}:${parsed.port}`, certSha256: sha };
}

const sha256Hex = (der: Buffer) => createHash('sha256').update(der).digest('hex');
const toPem = (der: Buffer) => `-----BEGIN CERTIFICATE-----\n${der.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n?$/, '\n')}-----END CERTIFICATE-----\n`;

/** The agent's certificate is not the published one. */
export class PinError extends Error {
  constructor(ep: AgentHttpsEndpoint, got: string) {
    super(`the agent of node ${ep.node} at ${ep.url} presented a certificate with SHA-256 ${got}, but its Node publishes ${ep.certSha256} (${NODE_ANNOTATIONS.agentCertSha256}): refusing it, no token sent. Something else answers there, or the agent's certificate changed and it has not re-registered (restart it; check its log)`);
    this.name = 'PinError';
  }
}

const probed = new Map<string, string>();

/** The agent's certificate as PEM after checking its fingerprint (one bare handshake per endpoint and process). */
export function pinnedCertificate(ep: AgentHttpsEndpoint, timeoutMs: number): Promise<string> {
  const key = `${ep.socketPath ?? ''} ${ep.url} ${ep.certSha256}`;
  const hit = probed.get(key);
  if (hit) return Promise.resolve(hit);
  const u = new URL(ep.url);
  return new Promise((resolve, reject) => {
    const where = ep.socketPath ? { path: ep.socketPath } : { host: u.hostname, port: Number(u.port) };
    // No request is sent on this connection: it only fetches the certificate.
    const s = tls.connect({ ...where, rejectUnauthorized: false });
    const timer = setTimeout(() => s.destroy(new Error(`no TLS handshake within ${timeoutMs} ms`)), timeoutMs);
    s.once('secureConnect', () => {
      clearTimeout(timer);
      const der = s.getPeerCertificate().raw;
      s.destroy();
      const got = sha256Hex(der);
      if (got !== ep.certSha256) return reject(new PinError(ep, got));
      const pem = toPem(der);
      probed.set(key, pem);
      resolve(pem);
    });
    s.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

/** A client for the agent's endpoint that trusts only its pinned certificate and sends the admin token. */
export async function agentHttpsClient(ep: AgentHttpsEndpoint, token: string | undefined, timeoutMs: number): Promise<ApiClient> {
  const ca = await pinnedCertificate(ep, timeoutMs);
  return new ApiClient({
    server: ep.url,
    ca,
    ...(token !== undefined ? { token } : {}),
    timeoutMs,
    ...(ep.socketPath ? { socketPath: ep.socketPath } : {}),
    // The certificate names the node's address, not necessarily what the URL says: the pin is the check.
    checkServerIdentity: (_host, cert) => (sha256Hex(cert.raw) === ep.certSha256 ? undefined : new PinError(ep, sha256Hex(cert.raw))),
  });
}

/** Why a connection to the endpoint failed, for "cannot reach the agent of NODE: …". */
export function httpsFailure(ep: AgentHttpsEndpoint, e: Error): string {
  if (e instanceof PinError) return e.message;
  const m = e.message;
  const via = ep.socketPath ? ` (through the lab's forwarder ${ep.socketPath})` : '';
  if (ep.socketPath && /ENOENT/.test(m)) return `the lab's forwarder socket ${ep.socketPath} is missing (is the lab still there? podwire lab status)`;
  if (ep.socketPath && /ECONNREFUSED/.test(m) && !/\d+\.\d+\.\d+\.\d+:\d+/.test(m)) return `the lab's forwarder does not answer on ${ep.socketPath}`;
  if (/ECONNREFUSED|ECONNRESET|socket hang up|disconnected before secure TLS/.test(m)) return `nothing answers at ${ep.url}${via} (agent stopped?)`;
  if (/ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|no TLS handshake|no answer within/.test(m)) return `${ep.url}${via} does not answer (${m.replace(/^.*: /, '')}); is the node up and the port open?`;
  return `${ep.url}${via}: ${m}`;
}
