import t from 'tap';
import {
  FIELD_SELECTOR_FIELDS,
  SelectorError,
  formatLabelSelector,
  matchesFields,
  matchesLabels,
  matchesSelectorMap,
  parseFieldSelector,
  parseLabelSelector,
  selectorFromMap,
  type LabelRequirement,
} from '../../src/controlplane/selectors.js';

const req = (key: string, operator: LabelRequirement['operator'], ...values: string[]): LabelRequirement => ({ key, operator, values });

function expectError(t: Tap, fn: () => unknown, term: string, detail: RegExp, name: string): void {
  try {
    fn();
    t.fail(`${name}: expected a SelectorError`);
  } catch (e) {
    t.ok(e instanceof SelectorError, `${name}: a SelectorError`);
    const err = e as SelectorError;
    t.equal(err.term, term, `${name}: names the term`);
    t.ok(err.message.includes(JSON.stringify(term)) && detail.test(err.message), `${name}: ${err.message}`);
  }
}
type Tap = { ok: (...args: any[]) => unknown; equal: (...args: any[]) => unknown; fail: (...args: any[]) => unknown };

t.test('label selector parsing', async (t) => {
  const cases: Array<[string, LabelRequirement[]]> = [
    ['', []],
    ['   ', []],
    ['app=web', [req('app', 'equals', 'web')]],
    ['app==web', [req('app', 'equals', 'web')]],
    ['app!=web', [req('app', 'notEquals', 'web')]],
    ['app=', [req('app', 'equals', '')]],
    ['app !=  ', [req('app', 'notEquals', '')]],
    [' app = web , tier != db ', [req('app', 'equals', 'web'), req('tier', 'notEquals', 'db')]],
    ['env in (prod,staging)', [req('env', 'in', 'prod', 'staging')]],
    ['env in(staging , prod, prod)', [req('env', 'in', 'prod', 'staging')]],
    ['env notin (dev)', [req('env', 'notIn', 'dev')]],
    ['env in (x,)', [req('env', 'in', '', 'x')]],
    ['env in ()', [req('env', 'in', '')]],
    ['canary', [req('canary', 'exists')]],
    ['!canary', [req('canary', 'doesNotExist')]],
    ['! canary', [req('canary', 'doesNotExist')]],
    ['example.com/tier=Front.End_1', [req('example.com/tier', 'equals', 'Front.End_1')]],
    ['a in (x,y),b notin (z),c,!d,e=f', [req('a', 'in', 'x', 'y'), req('b', 'notIn', 'z'), req('c', 'exists'), req('d', 'doesNotExist'), req('e', 'equals', 'f')]],
    [`v=${'x'.repeat(63)}`, [req('v', 'equals', 'x'.repeat(63))]],
  ];
  for (const [text, requirements] of cases) t.same(parseLabelSelector(text).requirements, requirements, JSON.stringify(text));
  t.equal(formatLabelSelector(parseLabelSelector(' a in (y,x), b!=c ,!d, e, f==g')), 'a in (x,y),b!=c,!d,e,f=g');
});

t.test('malformed label selectors name the term', async (t) => {
  const cases: Array<[string, string, RegExp]> = [
    ['app=web,', '', /empty term/],
    ['app=web,,tier=db', '', /empty term/],
    ['=web', '=web', /expected key/],
    ['env in (a,b', 'env in (a,b', /unbalanced parentheses/],
    ['env in a,b)', 'b)', /unbalanced parentheses/],
    ['app=web,env notin ((a)', 'env notin ((a)', /unbalanced parentheses/],
    ['app=web,env in', 'env in', /expected key/],
    ['app=web,tier=db=x', 'tier=db=x', /expected key/],
    ['app=web c', 'app=web c', /expected key/],
    ['!app=web', '!app=web', /expected key/],
    ['version>1', 'version>1', /name part must consist/],
    ['bad key=1', 'bad key=1', /expected key/],
    ['app=we$b', 'app=we$b', /valid label must be an empty string/],
    ['app=-web', 'app=-web', /valid label/],
    [`app=${'x'.repeat(64)}`, `app=${'x'.repeat(64)}`, /no more than 63/],
    ['env in (a b)', 'env in (a b)', /valid label/],
    ['Example.com/app=x', 'Example.com/app=x', /prefix part/],
    ['/app', '/app', /prefix part must be non-empty/],
    ['a/b/c', 'a/b/c', /NAME or PREFIX\/NAME/],
    [`${'k'.repeat(64)}=x`, `${'k'.repeat(64)}=x`, /no more than 63/],
  ];
  for (const [text, term, detail] of cases) expectError(t, () => parseLabelSelector(text), term, detail, JSON.stringify(text));
  t.match(new SelectorError('label', 'x y', 'x y', 'bad').message, /^invalid label selector "x y": term "x y": bad$/);
});

t.test('label selector matching', async (t) => {
  const labels = { app: 'web', tier: 'front', env: 'prod', empty: '' };
  const cases: Array<[string, Record<string, string> | undefined, boolean]> = [
    ['', undefined, true],
    ['', labels, true],
    ['app=web', labels, true],
    ['app=db', labels, false],
    ['app=web', undefined, false],
    ['app!=db', labels, true],
    ['app!=web', labels, false],
    ['missing!=x', labels, true], // absent keys satisfy the negative operators
    ['empty=', labels, true],
    ['empty!=', labels, false],
    ['missing=', labels, false],
    ['env in (prod,staging)', labels, true],
    ['env in (dev,staging)', labels, false],
    ['missing in (a)', labels, false],
    ['env notin (dev)', labels, true],
    ['env notin (prod,dev)', labels, false],
    ['missing notin (a)', labels, true],
    ['app', labels, true],
    ['missing', labels, false],
    ['!missing', labels, true],
    ['!app', labels, false],
    ['app=web,tier=front,env in (prod),!canary', labels, true],
    ['app=web,tier=back', labels, false],
    ['constructor', {}, false], // not found on Object.prototype
    ['!constructor', {}, true],
  ];
  for (const [text, l, want] of cases) t.equal(matchesLabels(parseLabelSelector(text), l), want, `${text} on ${JSON.stringify(l)}`);
});

t.test('service selector maps', async (t) => {
  t.same(selectorFromMap({ tier: 'front', app: 'web' }).requirements, [req('app', 'equals', 'web'), req('tier', 'equals', 'front')]);
  t.same(selectorFromMap({}).requirements, []);
  const cases: Array<[Record<string, string>, Record<string, string> | undefined, boolean]> = [
    [{ app: 'web' }, { app: 'web', tier: 'front' }, true],
    [{ app: 'web', tier: 'front' }, { app: 'web' }, false],
    [{ app: 'web' }, { app: 'db' }, false],
    [{ app: 'web' }, undefined, false],
    [{ app: '' }, { app: '' }, true],
    [{ app: '' }, {}, false],
    [{}, { app: 'web' }, true], // the matcher alone: an empty map matches (callers exclude selector-less services)
    [{ constructor: 'x' }, {}, false],
  ];
  for (const [map, labels, want] of cases) {
    t.equal(matchesSelectorMap(map, labels), want, `${JSON.stringify(map)} on ${JSON.stringify(labels)}`);
    t.equal(matchesLabels(selectorFromMap(map), labels), want, `selectorFromMap ${JSON.stringify(map)} agrees`);
  }
});

t.test('field selectors', async (t) => {
  t.same(parseFieldSelector('').requirements, []);
  t.same(parseFieldSelector(' metadata.name = web , spec.nodeName!=node-1,metadata.namespace==kube-system,').requirements, [
    { field: 'metadata.name', operator: 'equals', value: 'web' },
    { field: 'spec.nodeName', operator: 'notEquals', value: 'node-1' },
    { field: 'metadata.namespace', operator: 'equals', value: 'kube-system' },
  ]);
  t.same(parseFieldSelector('metadata.name=a\\,b\\=c\\\\d').requirements, [{ field: 'metadata.name', operator: 'equals', value: 'a,b=c\\d' }]);
  t.same(parseFieldSelector('spec.nodeName=').requirements, [{ field: 'spec.nodeName', operator: 'equals', value: '' }]);
  t.same(FIELD_SELECTOR_FIELDS, ['metadata.name', 'metadata.namespace', 'spec.nodeName']);

  const pod = { metadata: { name: 'web-1', namespace: 'default' }, spec: { nodeName: 'node-1' } };
  const unscheduled = { metadata: { name: 'web-2', namespace: 'default' }, spec: {} };
  const cluster = { metadata: { name: 'node-1' } };
  const cases: Array<[string, { metadata: { name: string; namespace?: string }; spec?: unknown }, boolean]> = [
    ['', pod, true],
    ['metadata.name=web-1', pod, true],
    ['metadata.name==web-2', pod, false],
    ['metadata.name!=web-2', pod, true],
    ['metadata.namespace=default,spec.nodeName=node-1', pod, true],
    ['metadata.namespace=default,spec.nodeName=node-2', pod, false],
    ['spec.nodeName=', unscheduled, true],
    ['spec.nodeName!=', unscheduled, false],
    ['spec.nodeName=node-1', unscheduled, false],
    ['spec.nodeName=', { metadata: { name: 'x' }, spec: 'weird' }, true],
    ['metadata.namespace=', cluster, true],
    ['metadata.name=node-1', cluster, true],
  ];
  for (const [text, obj, want] of cases) t.equal(matchesFields(parseFieldSelector(text), obj), want, `${text} on ${obj.metadata.name}`);
});

t.test('malformed field selectors name the term', async (t) => {
  const cases: Array<[string, string, RegExp]> = [
    ['status.phase=Running', 'status.phase=Running', /field "status.phase" is not supported; supported fields: metadata.name, metadata.namespace, spec.nodeName/],
    ['metadata.name=web,metadata.labels=x', 'metadata.labels=x', /not supported/],
    ['metadata.name', 'metadata.name', /expected field=value/],
    ['=web', '=web', /empty field name/],
    ['metadata.name===web', 'metadata.name===web', /unescaped "="/],
    ['metadata.name=a\\b', 'metadata.name=a\\b', /invalid escape sequence/],
    ['metadata.name=a\\', 'metadata.name=a\\', /invalid escape sequence/],
  ];
  for (const [text, term, detail] of cases) expectError(t, () => parseFieldSelector(text), term, detail, JSON.stringify(text));
  expectError(t, () => parseFieldSelector('spec.nodeName=n1', ['metadata.name', 'metadata.namespace']), 'spec.nodeName=n1', /supported fields: metadata.name, metadata.namespace$/, 'narrowed fields');
  t.match(new SelectorError('field', 'a', 'a', 'x').message, /^invalid field selector/);
});
