// The main job's connectivity matrix: from every pod, TCP to every other pod (same node over cni0,
// other nodes over the overlay or direct routes) and to the outside host. A pod→pod connection
// must arrive with the client pod's own address (never NATed); a pod→outside connection must
// arrive from the node's underlay address (masqueraded).
import { spawn } from 'node:child_process';
import { spawnInNetns } from '../netns/exec.js';
import type { ProbeResult } from './connectivity.js';
import type { ProbeAnswer } from './echo.js';
import { BIN, ECHO_PORT, ECHO_SERVICE, ECHO_SERVICE_PORT, OUTSIDE_IP, type LabCluster } from './cluster.js';

/**
 * withResolvConf: through `ip netns exec`, which mounts /etc/netns/NETNS/resolv.conf over
 * /etc/resolv.conf in the child's mount namespace, so a target given by name is looked up with the
 * pod's resolv.conf (cluster DNS, search path, ndots) by glibc, as a process in a pod would.
 */
function probeFrom(netns: string, targets: string[], timeoutMs: number, withResolvConf = false): Promise<ProbeAnswer[]> {
  return new Promise((resolve, reject) => {
    const argv = [BIN.echo, 'probe', String(timeoutMs), ...targets];
    const stdio: ['ignore', 'pipe', 'pipe'] = ['ignore', 'pipe', 'pipe'];
    const child = withResolvConf ? spawn('ip', ['netns', 'exec', netns, process.execPath, ...argv], { stdio }) : spawnInNetns(netns, process.execPath, argv, { stdio });
    let out = '';
    let err = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`probe in ${netns} exited ${code}: ${err.trim()}`));
      resolve(out.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as ProbeAnswer));
    });
  });
}

export async function clusterConnectivity(c: LabCluster, timeoutMs = 3000): Promise<ProbeResult[]> {
  const underlayOf = new Map(c.nodes.map((n) => [n.name, n.underlayIp]));
  const runs = c.pods.map(async (from) => {
    const dests = [...c.pods.filter((p) => p !== from).map((p) => ({ to: p.name, ip: p.ip, expectSeen: from.ip, expectName: p.name })), { to: 'outside', ip: OUTSIDE_IP, expectSeen: underlayOf.get(from.node)!, expectName: 'outside' }];
    const answers = await probeFrom(from.netns, dests.map((d) => `${d.ip}:${ECHO_PORT}`), timeoutMs);
    return dests.map((d, i): ProbeResult => {
      const a = answers[i]!;
      const base = { from: from.name, fromNetns: from.netns, to: d.to, toIp: d.ip, kind: 'tcp' as const };
      if (!a.ok) return { ...base, ok: false, detail: a.error ?? 'failed' };
      if (a.name !== d.expectName) return { ...base, ok: false, detail: `answered by ${a.name}, not ${d.expectName}` };
      if (a.seenAs !== d.expectSeen) return { ...base, ok: false, detail: `arrived from ${a.seenAs}, expected ${d.expectSeen} (${d.to === 'outside' ? 'not masqueraded' : 'NATed'})` };
      return { ...base, ok: true, detail: `${a.ms} ms, seen as ${a.seenAs}` };
    });
  });
  return (await Promise.all(runs)).flat();
}

/** The column of the service matrix for the connection by name (the pods' cluster DNS). */
export const BY_NAME = `${ECHO_SERVICE}:${ECHO_SERVICE_PORT} by name`;

/**
 * The service part of the matrix: every pod → the ClusterIP (answered by some echo pod) and → the
 * service by its short name `echo` (resolved through the pod's resolv.conf by the cluster DNS to
 * that ClusterIP), every node → the NodePort on every node's address, and the outside host →
 * every node's NodePort.
 */
export async function serviceConnectivity(c: LabCluster, clusterIp: string, nodePort: number, timeoutMs = 3000): Promise<ProbeResult[]> {
  const echoNames = new Set(c.pods.map((p) => p.name));
  const judge = (from: string, fromNetns: string, to: string, toIp: string, a: ProbeAnswer): ProbeResult => {
    const base = { from, fromNetns, to, toIp, kind: 'tcp' as const };
    if (!a.ok) return { ...base, ok: false, detail: to === BY_NAME && /ENOTFOUND|EAI_AGAIN/.test(a.error ?? '') ? `${a.error}: the cluster DNS did not resolve ${ECHO_SERVICE}` : a.error ?? 'failed' };
    if (to === BY_NAME && a.address !== clusterIp) return { ...base, ok: false, detail: `echo resolved to ${a.address}, not the ClusterIP ${clusterIp}` };
    if (!echoNames.has(a.name ?? '')) return { ...base, ok: false, detail: `answered by ${a.name}, not an echo pod` };
    return { ...base, ok: true, detail: `${a.ms} ms via ${a.name}, seen as ${a.seenAs}` };
  };
  const nodePorts = c.nodes.map((n) => ({ to: `${n.name}:${nodePort}`, target: `${n.underlayIp}:${nodePort}` }));
  const sources = [
    ...c.pods.map((p) => ({ from: p.name, netns: p.netns, byName: true, targets: [{ to: `clusterIP:${ECHO_SERVICE_PORT}`, target: `${clusterIp}:${ECHO_SERVICE_PORT}` }, { to: BY_NAME, target: `${ECHO_SERVICE}:${ECHO_SERVICE_PORT}` }] })),
    ...c.nodes.map((n) => ({ from: n.name, netns: n.netns, targets: nodePorts })),
    { from: 'outside', netns: c.outside.netns, targets: nodePorts },
  ];
  const runs = sources.map(async (s) => {
    const answers = await probeFrom(s.netns, s.targets.map((t) => t.target), timeoutMs, 'byName' in s);
    return s.targets.map((t, i) => judge(s.from, s.netns, t.to, t.target, answers[i]!));
  });
  return (await Promise.all(runs)).flat();
}
