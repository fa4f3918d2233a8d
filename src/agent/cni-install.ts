// --install-cni: put the CNI plugin and a conflist where the runtime looks (as flannel's
// install-cni init container does). Written atomically and only when the content differs, so a
// restart does not disturb a runtime reading the directory.
import fs from 'node:fs';
import path from 'node:path';

export interface CniInstallOptions {
  pluginSource: string; // the bundled plugin (dist/bin/podwire-cni.mjs)
  /** The native client (dist/bin/podwire-cni-client): when given, it is `podwire` and the bundle `podwire-node`, its fallback. */
  clientSource?: string;
  binDir: string; // e.g. /opt/cni/bin
  confDir: string; // e.g. /etc/cni/net.d
  subnetFile: string;
  agentSocket: string;
  nodeName: string;
  /** The cluster config's clusterDNS and clusterDomain: the plugin puts them in each pod's result (src/cni/cluster-dns.ts). */
  clusterDns?: { clusterDNS: string; clusterDomain: string };
}

export const CONFLIST_NAME = '10-podwire.conflist';
/** The conflist's network name: the CNI plugin keeps its reservations in <ipam data dir>/<this>/. */
export const CNI_NETWORK_NAME = 'podwire';
/** Where the plugin keeps IPAM reservations when the config names no dataDir (src/cni/config.ts DEFAULT_DATA_DIR). */
export const DEFAULT_IPAM_DATA_DIR = '/var/lib/podwire/networks';

/** The network config list (pure): podwire registering pods through the agent, plus portmap when installed. */
export function conflist(o: Pick<CniInstallOptions, 'subnetFile' | 'agentSocket' | 'nodeName' | 'clusterDns'>, withPortmap: boolean): object {
  return {
    cniVersion: '1.0.0',
    name: CNI_NETWORK_NAME,
    plugins: [
      { type: 'podwire', subnetFile: o.subnetFile, ...(o.clusterDns ? { clusterDNS: o.clusterDns.clusterDNS, clusterDomain: o.clusterDns.clusterDomain } : {}), controlPlane: { agentSocket: o.agentSocket, nodeName: o.nodeName } },
      ...(withPortmap ? [{ type: 'portmap', capabilities: { portMappings: true } }] : []),
    ],
  };
}

function writeIfChanged(file: string, content: Buffer, mode: number): boolean {
  if (fs.existsSync(file) && fs.readFileSync(file).equals(content)) return false;
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o755 });
  const tmp = `${file}.podwire-tmp`;
  fs.writeFileSync(tmp, content, { mode });
  fs.renameSync(tmp, file);
  return true;
}

/**
 * Returns the files it (re)wrote. With the native client, `podwire` is the client (the CNI fast
 * path through this agent) and `podwire-node` the Node plugin it falls back to; without it,
 * `podwire` is the Node plugin itself (a `podwire-node` of an earlier install is removed).
 */
export function installCni(o: CniInstallOptions): string[] {
  const written: string[] = [];
  const plugin = path.join(o.binDir, 'podwire');
  const fallback = path.join(o.binDir, 'podwire-node');
  if (o.clientSource) {
    // The fallback first: a client that finds no podwire-node beside it cannot fall back.
    if (writeIfChanged(fallback, fs.readFileSync(o.pluginSource), 0o755)) written.push(fallback);
    if (writeIfChanged(plugin, fs.readFileSync(o.clientSource), 0o755)) written.push(plugin);
  } else {
    if (writeIfChanged(plugin, fs.readFileSync(o.pluginSource), 0o755)) written.push(plugin);
    fs.rmSync(fallback, { force: true });
  }
  const list = path.join(o.confDir, CONFLIST_NAME);
  const text = JSON.stringify(conflist(o, fs.existsSync(path.join(o.binDir, 'portmap'))), null, 2) + '\n';
  if (writeIfChanged(list, Buffer.from(text), 0o644)) written.push(list);
  return written;
}
