// The nftables service proxy (the agent's default mode) end to end in a 3-node lab cluster: the
// checks are test/lib/proxy-e2e-suite.ts (shared with proxy-e2e-iptables.test.ts), the rules
// oracle (`nft -j list table inet podwire`) is test/lib/proxy-e2e-nft-oracle.ts.
import t from 'tap';
import { nftOracle } from '../lib/proxy-e2e-nft-oracle.js';
import { runProxyE2E } from '../lib/proxy-e2e-suite.js';

void runProxyE2E(t, 'nftables', nftOracle);
