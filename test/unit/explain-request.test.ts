// The agent's POST /v1/debug/explain-hop body validation (src/agent/debug/explain.ts).
import t from 'tap';
import { validateExplainRequest } from '../../src/agent/debug/explain.js';

t.test('validateExplainRequest', async (t) => {
  t.same(validateExplainRequest({ src: '10.244.1.2', dst: '10.96.0.10', port: 80, protocol: 'TCP', iif: 'pod', srcNetnsHint: '/run/netns/x' }),
    { src: '10.244.1.2', dst: '10.96.0.10', port: 80, protocol: 'TCP', iif: 'pod', srcNetnsHint: '/run/netns/x' });
  t.same(validateExplainRequest({ src: '10.244.1.2', dst: '10.244.2.3', protocol: 'UDP', iif: 'underlay', via: 'vxlan' }),
    { src: '10.244.1.2', dst: '10.244.2.3', protocol: 'UDP', iif: 'underlay', via: 'vxlan' });
  const bad: [unknown, RegExp][] = [
    [null, /JSON object/],
    [{ src: 'x', dst: '10.0.0.1', protocol: 'TCP', iif: 'pod' }, /src "x" is not an IPv4 address/],
    [{ src: '10.0.0.1', dst: 'fd00::1', protocol: 'TCP', iif: 'pod' }, /dst "fd00::1" is not an IPv4 address \(explain is IPv4 only\)/],
    [{ src: '10.0.0.1', dst: '10.0.0.2', port: 0, protocol: 'TCP', iif: 'pod' }, /port 0 is not 1-65535/],
    [{ src: '10.0.0.1', dst: '10.0.0.2', port: 1.5, protocol: 'TCP', iif: 'pod' }, /port 1.5/],
    [{ src: '10.0.0.1', dst: '10.0.0.2', protocol: 'tcp', iif: 'pod' }, /protocol "tcp"/],
    [{ src: '10.0.0.1', dst: '10.0.0.2', protocol: 'TCP', iif: 'eth0' }, /iif "eth0" is not pod, underlay or local/],
    [{ src: '10.0.0.1', dst: '10.0.0.2', protocol: 'TCP', iif: 'underlay', via: 'gre' }, /via "gre"/],
    [{ src: '10.0.0.1', dst: '10.0.0.2', protocol: 'TCP', iif: 'pod', srcNetnsHint: 7 }, /srcNetnsHint must be a string/],
  ];
  for (const [body, want] of bad) t.match(validateExplainRequest(body), want, JSON.stringify(body));
});
