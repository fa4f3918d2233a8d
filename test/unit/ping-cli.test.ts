// `podwire ping`'s and `podwire lab exec`'s pure parts: the ping(8)-style summary, the exit code,
// the lab exec argument split and lab choice.
import t from 'tap';
import { pingExitCode, renderPing, type PingReport } from '../../src/cli/debug/ping.js';
import { pickLab, splitExecArgs } from '../../src/cli/lab-exec.js';
import { UsageError } from '../../src/flags/flags.js';
import type { LabState } from '../../src/lab/lab.js';

const base: PingReport = {
  source: 'pod default/echo-node1-1', destination: 'pod default/echo-node2-1', node: 'node1',
  src: '10.244.1.2', dst: '10.244.2.2', sent: 3, received: 3, lossPct: 0,
  rttMs: { min: 0.1, avg: 0.2, max: 0.3 },
  replies: [{ seq: 1, rttMs: 0.1 }, { seq: 2, rttMs: 0.2 }, { seq: 3, rttMs: 0.3 }],
};

t.test('renderPing and exit code', async (t) => {
  t.equal(renderPing(base), [
    'PING pod default/echo-node2-1 (10.244.2.2) from pod default/echo-node1-1 (10.244.1.2) on node node1',
    'reply from 10.244.2.2: icmp_seq=1 time=0.100 ms',
    'reply from 10.244.2.2: icmp_seq=2 time=0.200 ms',
    'reply from 10.244.2.2: icmp_seq=3 time=0.300 ms',
    '3 packets transmitted, 3 received, 0% packet loss; rtt min/avg/max = 0.100/0.200/0.300 ms',
  ].join('\n'));
  t.equal(pingExitCode(base), 0);
  const lost = { ...base, received: 0, lossPct: 100, rttMs: null, replies: [] };
  t.match(renderPing(lost), /^3 packets transmitted, 0 received, 100% packet loss$/m);
  t.notMatch(renderPing(lost), /rtt/);
  t.equal(pingExitCode(lost), 1);
  t.equal(pingExitCode({ ...base, received: 2, lossPct: 33.3 }), 1, 'any loss');
  t.equal(pingExitCode({ ...base, sent: 0, received: 0 }), 1, 'nothing sent');
});

t.test('lab exec arguments', async (t) => {
  t.same(splitExecArgs(['--lab', 'pw-a-', 'web', '--', 'ip', '-4', 'addr', '--', 'x']), { before: ['--lab', 'pw-a-', 'web'], command: ['ip', '-4', 'addr', '--', 'x'] });
  t.throws(() => splitExecArgs(['web', 'ip']), UsageError, 'no --');
  t.throws(() => splitExecArgs(['web', '--']), /no command after --/);
  const lab = (prefix: string) => ({ prefix }) as LabState;
  t.equal(pickLab(undefined, [lab('pw-a-')]).prefix, 'pw-a-', 'the only lab');
  t.equal(pickLab('pw-b', [lab('pw-a-'), lab('pw-b-')]).prefix, 'pw-b-');
  t.throws(() => pickLab(undefined, [lab('pw-a-'), lab('pw-b-')]), /2 labs are recorded \(pw-a-, pw-b-\); pick one with --lab PREFIX/);
  t.throws(() => pickLab(undefined, []), /no lab is recorded/);
  t.throws(() => pickLab('pw-c', [lab('pw-a-')]), UsageError);
});
