// The certificate of the agent's HTTPS debug endpoint: --debug-tls-cert/--debug-tls-key, or else a
// self-signed one made once with `openssl` in the agent's run dir (debug-tls.crt, debug-tls.key
// 0600) and reused on every start. The CLI does not check it against a CA: it pins the SHA-256
// the agent publishes on its Node (podwire.io/agent-cert-sha256), which only an admin or the node
// itself may write.
import { X509Certificate } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export interface DebugCert {
  cert: Buffer;
  key: Buffer;
  /** SHA-256 of the DER certificate, lowercase hex without colons. */
  sha256: string;
  certFile: string;
}

/** "AB:CD:…" (X509Certificate.fingerprint256, getPeerCertificate().fingerprint256) → "abcd…". */
export const normalFingerprint = (f: string): string => f.replace(/:/g, '').toLowerCase();

export function certSha256(pem: Buffer | string): string {
  return normalFingerprint(new X509Certificate(pem).fingerprint256);
}

export function debugCertFiles(runDir: string): { cert: string; key: string } {
  return { cert: path.join(runDir, 'debug-tls.crt'), key: path.join(runDir, 'debug-tls.key') };
}

export function loadOrCreateDebugCert(o: { certFile?: string; keyFile?: string; runDir: string; nodeName: string; ip: string }): DebugCert {
  let certFile = o.certFile;
  let keyFile = o.keyFile;
  if (certFile === undefined) {
    const files = debugCertFiles(o.runDir);
    certFile = files.cert;
    keyFile = files.key;
    if (!fs.existsSync(certFile) || !fs.existsSync(keyFile)) {
      const old = process.umask(0o077);
      try {
        execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '3650', '-subj', `/CN=system:node:${o.nodeName}`, '-addext', `subjectAltName=IP:${o.ip}`], { stdio: 'pipe' });
      } catch (e) {
        throw new Error(`cannot make the debug endpoint's certificate with openssl in ${o.runDir}: ${((e as { stderr?: Buffer }).stderr?.toString() || (e as Error).message).trim()}; install openssl or pass --debug-tls-cert/--debug-tls-key`);
      } finally {
        process.umask(old);
      }
      fs.chmodSync(keyFile, 0o600);
    }
  }
  const read = (f: string, what: string) => {
    try {
      return fs.readFileSync(f);
    } catch (e) {
      throw new Error(`--debug-tls-${what} ${f}: ${(e as Error).message}`);
    }
  };
  const cert = read(certFile, 'cert');
  const key = read(keyFile!, 'key');
  let sha256: string;
  try {
    sha256 = certSha256(cert);
  } catch (e) {
    throw new Error(`${certFile} is not a PEM certificate: ${(e as Error).message}`);
  }
  return { cert, key, sha256, certFile };
}
