// The debugging CLI's shared parts (src/cli/debug/): -o modes, colour rules, tables with colour,
// exit codes, close matches for unknown names, and target resolution from a recorded lab.
import t from 'tap';
import type { LabState } from '../../src/lab/lab.js';
import { UsageError } from '../../src/flags/flags.js';
import { colourEnabled, EXIT, painter, parseDebugOutput, renderTable, UnreachableError } from '../../src/cli/debug/output.js';
import { closeMatches, levenshtein, unknownName } from '../../src/cli/debug/suggest.js';
import { DEFAULT_AGENT_SOCKET, findLab, labTarget, resolveTarget } from '../../src/cli/debug/target.js';

const strip = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, '');

t.test('-o: table by default, wide, json; anything else is a usage error', async (t) => {
  t.equal(parseDebugOutput(undefined), 'table');
  t.equal(parseDebugOutput(''), 'table');
  t.equal(parseDebugOutput('wide'), 'wide');
  t.equal(parseDebugOutput('json'), 'json');
  t.throws(() => parseDebugOutput('yaml'), UsageError);
});

t.test('colour only on a TTY, never with NO_COLOR set (an empty NO_COLOR does not count)', async (t) => {
  t.equal(colourEnabled({ isTTY: true }, {}), true);
  t.equal(colourEnabled({ isTTY: false }, {}), false);
  t.equal(colourEnabled({}, {}), false, 'a pipe has no isTTY');
  t.equal(colourEnabled({ isTTY: true }, { NO_COLOR: '1' }), false);
  t.equal(colourEnabled({ isTTY: true }, { NO_COLOR: '' }), true);
  t.equal(painter(false)('bad', 'x'), 'x');
  t.equal(painter(true)('bad', 'x'), '\x1b[31mx\x1b[0m');
  t.equal(painter(true)(undefined, 'x'), 'x');
});

t.test('tables: columns line up by visible text, colour codes do not shift them', async (t) => {
  const rows = [['node1', { text: 'up', style: 'ok' as const }, 'x'], ['node22', { text: 'down', style: 'bad' as const }, 'y']];
  const plain = renderTable(['NODE', 'AGENT', 'P'], rows);
  t.equal(plain, ['NODE     AGENT   P', 'node1    up      x', 'node22   down    y'].join('\n'));
  const coloured = renderTable(['NODE', 'AGENT', 'P'], rows, painter(true));
  t.not(coloured, plain);
  t.equal(strip(coloured), plain, 'the same layout with colour');
});

t.test('exit codes as issue 15 has them', async (t) => {
  t.same(EXIT, { OK: 0, PROBLEM: 1, USAGE: 2, UNREACHABLE: 3 });
  t.ok(new UnreachableError('x') instanceof Error);
});

t.test('close matches: edit distance, substrings, closest first', async (t) => {
  t.equal(levenshtein('', 'abc'), 3);
  t.equal(levenshtein('kitten', 'sitting'), 3);
  t.equal(levenshtein('node1', 'node1'), 0);
  const nodes = ['node1', 'node2', 'node3', 'worker-a'];
  t.same(closeMatches('nod1', nodes), ['node1', 'node2', 'node3'], 'one edit first, then two');
  t.same(closeMatches('node9', nodes), ['node1', 'node2', 'node3']);
  t.same(closeMatches('worker', nodes), ['worker-a'], 'a prefix');
  t.same(closeMatches('zzzzzzzz', nodes), []);
  t.same(closeMatches('node1', nodes).includes('node1'), false, 'never the name itself');
  t.equal(unknownName('node', 'nod1', ['node1', 'node2']), 'unknown node "nod1"; did you mean node1 or node2? (known: node1, node2)');
  t.equal(unknownName('node', 'x', [], 'list them with podwire status'), 'unknown node "x" (list them with podwire status)');
});

const state = (prefix: string): LabState => ({
  prefix,
  underlayNetns: `${prefix}underlay`,
  underlayCidr: '192.0.2.0/24',
  nodes: ['node1', 'node2'].map((name, i) => ({ name, netns: `${prefix}${name}`, underlayIp: `192.0.2.${10 + i}`, underlayCidr: `192.0.2.${10 + i}/24`, underlayIf: 'eth0', mac: '' })),
  procs: [
    { pid: 101, startTime: '1', what: `${prefix}node1: /usr/bin/node --max-semi-space-size=2 /x/dist/src/agent/main.js --node-name node1` },
    { pid: 102, startTime: '1', what: `${prefix}node1-p1: /usr/bin/node /x/dist/src/lab/echo.js serve 8080` },
  ],
  createdAt: '2024-05-01T12:00:00Z',
});

t.test('--lab: the recorded lab, its control plane socket and token, every agent socket', async (t) => {
  const labs = [state('pw-abc123-'), state('pw-def456-')];
  t.equal(findLab('pw-abc123-', labs).prefix, 'pw-abc123-');
  t.equal(findLab('pw-abc123', labs).prefix, 'pw-abc123-', 'the trailing dash is optional');
  t.throws(() => findLab('pw-abc12-', labs), { name: 'UsageError', message: /unknown lab "pw-abc12-"; did you mean pw-abc123-\?/ });
  t.throws(() => findLab('pw-x-', []), { message: /no lab is recorded.*lab up --keep/ });
  const read: string[] = [];
  const target = labTarget(labs[0]!, (f) => (read.push(f), 'tok\n'));
  t.same(read, ['/run/podwire/lab/pw-abc123.d/controlplane/admin.token']);
  t.equal(target.controlPlane.socketPath, '/run/podwire/lab/pw-abc123.d/controlplane/api.sock');
  t.equal(target.controlPlane.token, 'tok');
  t.same([...target.labAgents!.values()], [
    { node: 'node1', socket: '/run/podwire/lab/pw-abc123.d/node1/agent.sock', httpsSocket: '/run/podwire/lab/pw-abc123.d/node1/agent-https.sock', netns: 'pw-abc123-node1', pid: 101 },
    { node: 'node2', socket: '/run/podwire/lab/pw-abc123.d/node2/agent.sock', httpsSocket: '/run/podwire/lab/pw-abc123.d/node2/agent-https.sock', netns: 'pw-abc123-node2' },
  ], 'agent PID from the procs the lab recorded (not the pod\'s echo server)');
  t.throws(() => labTarget(labs[0]!, () => { throw new Error('ENOENT'); }), UnreachableError, 'a lab without its files: cannot reach (3)');
});

t.test('without --lab: client config and the local agent socket; --lab with connection flags is a usage error', async (t) => {
  const labStates = () => [state('pw-abc123-')];
  const real = resolveTarget({ flags: { server: 'http://127.0.0.1:6443', token: 'x' }, env: {}, home: '/nonexistent', labStates });
  t.equal(real.controlPlane.server, 'http://127.0.0.1:6443');
  t.equal(real.localAgentSocket, DEFAULT_AGENT_SOCKET);
  t.equal(real.labAgents, undefined);
  t.equal(resolveTarget({ flags: { server: 'http://127.0.0.1:6443', 'agent-socket': '/tmp/a.sock' }, env: {}, home: '/nonexistent', labStates }).localAgentSocket, '/tmp/a.sock');
  t.throws(() => resolveTarget({ flags: { lab: 'pw-abc123-', server: 'http://x:1' }, env: {}, labStates }), { name: 'UsageError', message: /drop --server/ });
  t.throws(() => resolveTarget({ flags: {}, env: {}, home: '/nonexistent', labStates }), UsageError, 'no server anywhere');
});
