// `lab up --keep`: the kept lab reachable from the machine's own shell, as kind does it. A
// forwarder (forwarder.ts) started in the root netns listens on 127.0.0.1:PORT (a free port) and
// pipes to the control plane's unix socket; that listening socket is all it adds to the root
// netns (no link, address, route or rule). It terminates TLS with a certificate made for the lab
// (kubectl sends a bearer token only over https), so the kubeconfig and podwire.json name
// https://127.0.0.1:PORT with that certificate as their CA, and the lab's admin token. The
// forwarder is a tracked process of the lab (killed by PID on `lab down`) and exits by itself when
// the lab's state file is gone.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Lab, LabAccess } from './lab.js';
import { clusterFiles, type ClusterFiles } from './cluster.js';
import { listenPort } from './forward-spec.js';
import { startForwarder } from './forwarder-start.js';

/** A kubeconfig for one cluster, one user (a bearer token), one context; the lab's prefix names all three. */
export function kubeconfigText(name: string, server: string, caFile: string, token: string): string {
  const q = (s: string) => JSON.stringify(s);
  return `apiVersion: v1
kind: Config
clusters:
- name: ${q(name)}
  cluster:
    server: ${q(server)}
    certificate-authority: ${q(caFile)}
users:
- name: ${q(`${name}-admin`)}
  user:
    token: ${q(token)}
contexts:
- name: ${q(name)}
  context:
    cluster: ${q(name)}
    user: ${q(`${name}-admin`)}
    namespace: default
current-context: ${q(name)}
`;
}

/** The podwire client config (src/cli/client-config.ts format). */
export function podwireConfigText(server: string, tokenFile: string, caFile: string): string {
  return JSON.stringify({ server, tokenFile, caFile }, null, 2) + '\n';
}

/** The lines `lab up --keep` prints for the user's shell. */
export function exportLines(access: Pick<LabAccess, 'kubeconfig' | 'podwireConfig'>): string[] {
  return [`export KUBECONFIG=${access.kubeconfig}`, `export PODWIRE_CONFIG=${access.podwireConfig}`];
}

/** A self-signed certificate for 127.0.0.1 (openssl, as the kubectl test does); the key 0600. */
function makeCert(files: ClusterFiles, prefix: string): void {
  fs.mkdirSync(path.dirname(files.accessCert), { recursive: true, mode: 0o700 });
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', files.accessKey, '-out', files.accessCert, '-days', '30', '-subj', `/CN=podwire-lab-${prefix.replace(/-$/, '')}`, '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'pipe' });
  fs.chmodSync(files.accessKey, 0o600);
}

/**
 * Starts the root-netns forwarder to the control plane and writes the kubeconfig and podwire.json
 * (0600). The lab records the forwarder (its PID: teardown kills it) and the access in its state.
 */
export async function exposeControlPlane(lab: Lab): Promise<LabAccess> {
  const files = clusterFiles(lab.prefix);
  makeCert(files, lab.prefix);
  const ready = await startForwarder(lab, undefined, ['--forward', `tls:127.0.0.1:0=unix:${files.controlPlaneSocket}`, '--tls-cert', files.accessCert, '--tls-key', files.accessKey], files.accessLog, 'the control plane forwarder');
  const server = `https://127.0.0.1:${listenPort(ready.listening[0]!)}`;
  const token = fs.readFileSync(files.adminTokenFile, 'utf8').trim();
  fs.writeFileSync(files.kubeconfig, kubeconfigText(lab.prefix.replace(/-$/, ''), server, files.accessCert, token), { mode: 0o600 });
  fs.writeFileSync(files.podwireConfig, podwireConfigText(server, files.adminTokenFile, files.accessCert), { mode: 0o600 });
  const access: LabAccess = { server, forwarderPid: ready.pid, kubeconfig: files.kubeconfig, podwireConfig: files.podwireConfig };
  lab.setAccess(access);
  return access;
}
