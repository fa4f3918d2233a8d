// Is another node's DNS server answering? One UDP query (TXT dns-version.ZONE, which every
// podwire server answers from its index) to IP:53 from this node's netns, answered by anything
// with our id within the timeout. Only ever sent to addresses from kube-dns's Endpoints (other
// nodes' pod gateways), which the control plane only takes from each node's own podCIDR.
import dgram from 'node:dgram';
import { randomInt } from 'node:crypto';
import dnsPacket from 'dns-packet';
import { isIp } from '../../net/index.js';

export function realDnsProbe(zone: string, port = 53, timeoutMs = 1000): (ip: string) => Promise<boolean> {
  return (ip) => new Promise((resolve) => {
    if (!isIp(ip)) return resolve(false);
    const id = randomInt(1, 65535);
    const sock = dgram.createSocket(isIp(ip, 6) ? 'udp6' : 'udp4');
    let done = false;
    const finish = (ok: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.close();
      resolve(ok);
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    sock.on('error', () => finish(false));
    sock.on('message', (msg) => {
      if (msg.length >= 2 && msg.readUInt16BE(0) === id) finish(true);
    });
    const query = dnsPacket.encode({ type: 'query', id, flags: 0, questions: [{ type: 'TXT', name: `dns-version.${zone}` }] });
    sock.send(query, port, ip, (err) => err && finish(false));
  });
}
