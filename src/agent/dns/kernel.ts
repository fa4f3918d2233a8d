// The real NodeDnsKernel: the kube-dns address on lo over netlink, the nft table with nft -f.
import { isIp } from '../../net/index.js';
import type { CommandRunner } from '../../exec/runner.js';
import type { Handle } from '../../netlink/handle.js';
import type { NodeDnsKernel } from './node-dns.js';
import { DNS_TABLE_SPEC } from './rules.js';

const IFA_F_NODAD = 0x02;

export function realNodeDnsKernel(handle: Handle, runner: CommandRunner): NodeDnsKernel {
  return {
    bindClusterDns(ip) {
      const lo = handle.linkFind('lo');
      if (!lo) throw new Error('dns: this netns has no lo device to bind the cluster DNS address on');
      const v4 = isIp(ip, 4);
      // replace: idempotent, and an address left by an earlier run is adopted as it is.
      handle.addrReplace({ ifindex: lo.index, cidr: `${ip}/${v4 ? 32 : 128}`, ...(v4 ? {} : { flags: IFA_F_NODAD }) });
    },
    applyRules(script) {
      const r = runner.run('nft', ['-f', '-'], script);
      if (r.code !== 0) throw new Error(`dns: nft -f for table ${DNS_TABLE_SPEC} failed (exit ${r.code}): ${r.stderr.trim() || r.stdout.trim()}; is the nft_socket module available (nft's socket expression, kernel ≥ 5.x)?`);
    },
  };
}
