// Label and field selectors as kube-apiserver accepts them in ?labelSelector= and ?fieldSelector=,
// so kubectl's -l and --field-selector (and client-go informers) work unchanged against podwire.
// Pure: parse once per request, then match every listed or watched object.
import { validateLabelValue, validateQualifiedName, type FieldError } from '../api/validate.js';

/** A selector the API cannot parse; the API answers 400 BadRequest with this message. */
export class SelectorError extends Error {
  constructor(
    readonly kind: 'label' | 'field',
    readonly selector: string,
    /** The comma-separated term at fault, trimmed (what the user has to fix). */
    readonly term: string,
    detail: string,
  ) {
    super(`invalid ${kind} selector ${JSON.stringify(selector)}: term ${JSON.stringify(term)}: ${detail}`);
    this.name = 'SelectorError';
  }
}

// ---- Label selectors -------------------------------------------------------------------------

export type LabelOperator = 'equals' | 'notEquals' | 'in' | 'notIn' | 'exists' | 'doesNotExist';

export interface LabelRequirement {
  key: string;
  operator: LabelOperator;
  /** One value for equals/notEquals, a sorted de-duplicated set for in/notIn, empty otherwise. */
  values: readonly string[];
}

/** Requirements ANDed together; no requirements selects everything. */
export interface LabelSelector {
  requirements: readonly LabelRequirement[];
}

// A key or value token is anything up to whitespace or the selector syntax characters, as in
// Kubernetes' lexer; the validators below then apply the real key and value rules, so a bad
// character gets the same message kube-apiserver gives instead of a generic parse error.
const TOKEN = String.raw`[^\s!=(),]+`;
const SET_RE = new RegExp(String.raw`^(${TOKEN})\s+(in|notin)\s*\(([^()]*)\)$`);
const EQUALITY_RE = new RegExp(String.raw`^(${TOKEN})\s*(==|!=|=)\s*([^\s!=(),]*)$`);
const NOT_EXISTS_RE = new RegExp(String.raw`^!\s*(${TOKEN})$`);
const EXISTS_RE = new RegExp(`^(${TOKEN})$`);
const SYNTAX = 'expected key, !key, key=value, key==value, key!=value, key in (v1,v2) or key notin (v1,v2)';

/**
 * Splits at commas outside parentheses ("a in (x,y),b" is two terms). Parentheses must balance
 * within each term; the error names the term where they stop balancing.
 */
function splitLabelTerms(text: string): string[] {
  const terms: string[] = [];
  let depth = 0;
  let unbalanced = false;
  let start = 0;
  for (let i = 0; i <= text.length; i++) {
    const c = text[i];
    if (c === '(') depth++;
    else if (c === ')') unbalanced ||= --depth < 0;
    else if (i === text.length || (c === ',' && depth <= 0)) {
      const term = text.slice(start, i).trim();
      if (unbalanced || depth !== 0) throw new SelectorError('label', text, term, 'unbalanced parentheses');
      terms.push(term);
      start = i + 1;
    }
  }
  return terms;
}

function check(text: string, term: string, errors: FieldError[]): void {
  if (errors.length > 0) throw new SelectorError('label', text, term, errors.map((e) => e.message).join('; '));
}

function parseLabelTerm(text: string, term: string): LabelRequirement {
  if (term === '') throw new SelectorError('label', text, term, `empty term; ${SYNTAX}`);
  let req: LabelRequirement;
  let m: RegExpExecArray | null;
  if ((m = SET_RE.exec(term))) {
    // Kubernetes reads "()" and empty list items as the empty value, so "a in (x,)" is {"", "x"}.
    const values = [...new Set(m[3].split(',').map((v) => v.trim()))].sort();
    req = { key: m[1], operator: m[2] === 'in' ? 'in' : 'notIn', values };
  } else if ((m = EQUALITY_RE.exec(term))) {
    req = { key: m[1], operator: m[2] === '!=' ? 'notEquals' : 'equals', values: [m[3]] };
  } else if ((m = NOT_EXISTS_RE.exec(term))) {
    req = { key: m[1], operator: 'doesNotExist', values: [] };
  } else if ((m = EXISTS_RE.exec(term))) {
    req = { key: m[1], operator: 'exists', values: [] };
  } else {
    throw new SelectorError('label', text, term, SYNTAX);
  }
  check(text, term, validateQualifiedName(req.key, 'key'));
  for (const v of req.values) check(text, term, validateLabelValue(v, 'value'));
  return req;
}

/**
 * Parses "app=web,tier!=db,env in (prod,staging),!canary". Whitespace around tokens is ignored;
 * the empty (or blank) string selects everything. Throws SelectorError naming the bad term.
 */
export function parseLabelSelector(text: string): LabelSelector {
  if (text.trim() === '') return { requirements: [] };
  return { requirements: splitLabelTerms(text).map((term) => parseLabelTerm(text, term)) };
}

/** The canonical text of a selector (requirements in their order), e.g. for logs. */
export function formatLabelSelector(selector: LabelSelector): string {
  const one = (r: LabelRequirement): string => {
    switch (r.operator) {
      case 'equals': return `${r.key}=${r.values[0]}`;
      case 'notEquals': return `${r.key}!=${r.values[0]}`;
      case 'in': return `${r.key} in (${r.values.join(',')})`;
      case 'notIn': return `${r.key} notin (${r.values.join(',')})`;
      case 'exists': return r.key;
      case 'doesNotExist': return `!${r.key}`;
    }
  };
  return selector.requirements.map(one).join(',');
}

// Labels come from JSON bodies: "constructor" or "__proto__" must not be found on the prototype.
const has = (labels: Record<string, string>, key: string): boolean => Object.prototype.hasOwnProperty.call(labels, key);

function matchesRequirement(r: LabelRequirement, labels: Record<string, string>): boolean {
  const present = has(labels, r.key);
  const value = present ? labels[r.key] : undefined;
  // As in Kubernetes, the negative operators also select objects that lack the key entirely.
  switch (r.operator) {
    case 'equals': return present && value === r.values[0];
    case 'notEquals': return !present || value !== r.values[0];
    case 'in': return present && r.values.includes(value as string);
    case 'notIn': return !present || !r.values.includes(value as string);
    case 'exists': return present;
    case 'doesNotExist': return !present;
  }
}

export function matchesLabels(selector: LabelSelector, labels: Record<string, string> | undefined): boolean {
  const l = labels ?? {};
  return selector.requirements.every((r) => matchesRequirement(r, l));
}

/**
 * A Service's spec.selector as a LabelSelector: every key=value must hold. Note that Kubernetes
 * treats an empty or absent Service selector as selecting NO pods (the endpoints are managed by
 * hand), whereas an empty LabelSelector selects everything: callers must check for that first.
 */
export function selectorFromMap(map: Record<string, string>): LabelSelector {
  const keys = Object.keys(map).sort();
  return { requirements: keys.map((key) => ({ key, operator: 'equals' as const, values: [map[key]] })) };
}

/** Every key=value of `map` is in `labels` (an empty map matches; see selectorFromMap). */
export function matchesSelectorMap(map: Record<string, string>, labels: Record<string, string> | undefined): boolean {
  const l = labels ?? {};
  return Object.keys(map).every((k) => has(l, k) && l[k] === map[k]);
}

// ---- Field selectors -------------------------------------------------------------------------

/** The fields podwire indexes; spec.nodeName is meaningful for pods (a kubelet's own pods). */
export const FIELD_SELECTOR_FIELDS = ['metadata.name', 'metadata.namespace', 'spec.nodeName'] as const;
export type SelectorField = (typeof FIELD_SELECTOR_FIELDS)[number];

export interface FieldRequirement {
  field: SelectorField;
  operator: 'equals' | 'notEquals';
  value: string;
}

export interface FieldSelector {
  requirements: readonly FieldRequirement[];
}

/** Kubernetes' field selector escaping: "\\", "\," and "\=" in values; bare "," "=" are errors. */
function unescapeFieldValue(text: string, term: string, raw: string): string {
  let out = '';
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i];
    if (c === '\\') {
      const next = raw[++i];
      if (next !== '\\' && next !== ',' && next !== '=') throw new SelectorError('field', text, term, `invalid escape sequence in value ${JSON.stringify(raw)}`);
      out += next;
    } else if (c === '=' || c === ',') {
      throw new SelectorError('field', text, term, `unescaped ${JSON.stringify(c)} in value ${JSON.stringify(raw)}`);
    } else {
      out += c;
    }
  }
  return out;
}

/** Splits at commas not escaped by a backslash (a value may contain "\,"). */
function splitFieldTerms(text: string): string[] {
  const terms: string[] = [];
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    if (text[i] === '\\') i++;
    else if (text[i] === ',') {
      terms.push(text.slice(start, i));
      start = i + 1;
    }
  }
  terms.push(text.slice(start));
  return terms;
}

function parseFieldTerm(text: string, term: string, supported: readonly SelectorField[]): FieldRequirement {
  // The first operator wins, trying "!=" and "==" before "=" at each position, as Kubernetes does.
  const m = /^([^!=]*)(!=|==|=)(.*)$/s.exec(term);
  if (!m) throw new SelectorError('field', text, term, 'expected field=value, field==value or field!=value');
  const field = m[1].trim();
  if (field === '') throw new SelectorError('field', text, term, 'empty field name');
  if (!(supported as readonly string[]).includes(field)) {
    throw new SelectorError('field', text, term, `field ${JSON.stringify(field)} is not supported; supported fields: ${supported.join(', ')}`);
  }
  const value = unescapeFieldValue(text, term, m[3].trim());
  return { field: field as SelectorField, operator: m[2] === '!=' ? 'notEquals' : 'equals', value };
}

/**
 * Parses "metadata.name=web,spec.nodeName!=node-1". Empty terms are skipped (as Kubernetes does),
 * so "" selects everything. `supported` narrows the fields for resources without spec.nodeName.
 */
export function parseFieldSelector(text: string, supported: readonly SelectorField[] = FIELD_SELECTOR_FIELDS): FieldSelector {
  const terms = splitFieldTerms(text).map((t) => t.trim()).filter((t) => t !== '');
  return { requirements: terms.map((term) => parseFieldTerm(text, term, supported)) };
}

/** An absent field reads as "", so "spec.nodeName=" selects unscheduled pods, as in Kubernetes. */
function fieldValue(field: SelectorField, obj: { metadata: { name: string; namespace?: string }; spec?: unknown }): string {
  switch (field) {
    case 'metadata.name': return obj.metadata.name;
    case 'metadata.namespace': return obj.metadata.namespace ?? '';
    case 'spec.nodeName': {
      const spec = obj.spec;
      const nodeName = typeof spec === 'object' && spec !== null ? (spec as { nodeName?: unknown }).nodeName : undefined;
      return typeof nodeName === 'string' ? nodeName : '';
    }
  }
}

export function matchesFields(selector: FieldSelector, obj: { metadata: { name: string; namespace?: string }; spec?: unknown }): boolean {
  return selector.requirements.every((r) => (fieldValue(r.field, obj) === r.value) === (r.operator === 'equals'));
}
