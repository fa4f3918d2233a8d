// The iptables service proxy (`podwire-agent --proxy-mode iptables`) end to end in a 3-node lab
// cluster: the checks are test/lib/proxy-e2e-suite.ts (shared with proxy-e2e.test.ts), the rules
// oracle (`iptables-save`, xt_recent, ICMP counters) is test/lib/proxy-e2e-iptables-oracle.ts.
import t from 'tap';
import { iptablesOracle } from '../lib/proxy-e2e-iptables-oracle.js';
import { runProxyE2E } from '../lib/proxy-e2e-suite.js';

void runProxyE2E(t, 'iptables', iptablesOracle);
