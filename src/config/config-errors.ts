import type { ZodError, ZodIssue } from 'zod';
import { SECRET_KEYS } from './config-schema';

/** Thrown for any invalid configuration; the CLI prints it and exits with code 2. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly exitCode = 2;
  constructor(message: string) {
    super(message);
  }
}

function valueAt(root: unknown, path: readonly (string | number)[]): unknown {
  let v: unknown = root;
  for (const p of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string | number, unknown>)[p];
  }
  return v;
}

/** Config keys holding URLs, whose user-info part is never echoed. */
const URL_KEYS: readonly string[] = ['mqtt.url'];

function show(v: unknown, key = ''): string {
  if (v === undefined) return 'nothing';
  if (SECRET_KEYS.includes(key)) return `a ${typeof v} (not shown: it is a credential)`;
  // A URL may carry a login; the schema refuses that, and the error must not repeat it.
  if (typeof v === 'string' && URL_KEYS.includes(key)) v = v.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@\s]*@/i, '$1(login not shown)@');
  const s = JSON.stringify(v);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

/** What an issue allows, in words. Union issues merge their branches' rules. */
function allowed(issue: ZodIssue): string {
  switch (issue.code) {
    case 'invalid_union': {
      const parts = new Set<string>();
      for (const e of issue.unionErrors) for (const i of e.issues) parts.add(allowed(i));
      return [...parts].join(' or ');
    }
    case 'invalid_literal':
      return JSON.stringify(issue.expected);
    case 'invalid_enum_value':
      return `one of ${issue.options.map((o) => JSON.stringify(o)).join(', ')}`;
    case 'invalid_type':
      return `a ${issue.expected}`;
    case 'too_small':
      return issue.type === 'string' ? `at least ${issue.minimum} characters` : `a number ${issue.inclusive ? '>=' : '>'} ${issue.minimum}`;
    case 'too_big':
      return issue.type === 'string' ? `at most ${issue.maximum} characters` : `a number ${issue.inclusive ? '<=' : '<'} ${issue.maximum}`;
    case 'not_multiple_of':
      return `a multiple of ${issue.multipleOf}`;
    default:
      return issue.message;
  }
}

/** One line per problem: `<source>: <key>: got <value>; allowed: <rule>`. */
export function describeConfigIssues(source: string, raw: unknown, err: ZodError): string {
  return describeIssues(source, raw, err, () => 'allowed keys are listed in docs/configuration.md');
}

/**
 * describeConfigIssues for any strict zod schema: `knownKeys` says, for the
 * object an unknown key was found in (its path), what is allowed there.
 */
export function describeIssues(source: string, raw: unknown, err: ZodError, knownKeys: (path: readonly (string | number)[]) => string): string {
  const lines: string[] = [];
  for (const issue of err.issues) {
    if (issue.code === 'unrecognized_keys') {
      const at = issue.path.join('.');
      for (const k of issue.keys) {
        const key = at ? `${at}.${k}` : k;
        lines.push(`${source}: unknown key "${key}" (got ${show(valueAt(raw, [...issue.path, k]), key)}); ${knownKeys(issue.path)}`);
      }
      continue;
    }
    const key = issue.path.join('.') || '(root)';
    let rule = allowed(issue);
    if (issue.code === 'invalid_type' && issue.expected === 'integer') rule = 'an integer';
    else if (issue.code === 'invalid_type' && issue.received === 'float') rule = 'an integer';
    lines.push(`${source}: ${key}: got ${show(valueAt(raw, issue.path), key)}; allowed: ${rule}`);
  }
  return lines.join('\n');
}
