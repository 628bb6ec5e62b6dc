import { z } from 'zod';
import { configSchema, ENV_OVERRIDES } from './config-schema';

/**
 * Renders docs/configuration.md from the schema itself, so the reference can
 * never list a key, default or limit the service does not have. The test in
 * test/config/config-doc.test.ts fails when the committed file is stale.
 */

export const REGENERATE_COMMAND = 'node dist/src/main.js --print-config-doc > docs/configuration.md';

/** One documented leaf key. */
export interface ConfigKeyDoc {
  key: string;
  /** JSON of the default, or null when the key has none. */
  defaultJson: string | null;
  allowed: string;
  env: string | null;
  description: string;
}

interface Peeled {
  /** The schema under every wrapper. */
  core: z.ZodTypeAny;
  /** The schema under Default/Optional/Effects but not Nullable: allowed values include null. */
  valueType: z.ZodTypeAny;
  defaultValue: { value: unknown } | null;
  description: string;
  optional: boolean;
}

/** Strips wrappers, remembering what they said; the outermost description and default win, as zod applies them. */
function peel(schema: z.ZodTypeAny): Peeled {
  let t = schema;
  let defaultValue: Peeled['defaultValue'] = null;
  let description = '';
  let optional = false;
  let valueType: z.ZodTypeAny | null = null;
  for (;;) {
    if (!description && t.description) description = t.description;
    if (t instanceof z.ZodDefault) {
      if (!defaultValue) defaultValue = { value: (t._def as z.ZodDefaultDef).defaultValue() };
      t = t._def.innerType;
    } else if (t instanceof z.ZodOptional) {
      optional = true;
      t = t.unwrap();
    } else if (t instanceof z.ZodEffects) {
      t = t.innerType();
    } else if (t instanceof z.ZodNullable) {
      valueType ??= t;
      t = t.unwrap();
    } else {
      break;
    }
  }
  return { core: t, valueType: valueType ?? t, defaultValue, description, optional };
}

function code(text: string): string {
  return '`' + text + '`';
}

function numberRule(t: z.ZodNumber): string {
  let kind = 'number';
  let min: { value: number; inclusive: boolean } | null = null;
  let max: { value: number; inclusive: boolean } | null = null;
  for (const c of t._def.checks) {
    if (c.kind === 'int') kind = 'integer';
    else if (c.kind === 'min') min = { value: c.value, inclusive: c.inclusive };
    else if (c.kind === 'max') max = { value: c.value, inclusive: c.inclusive };
  }
  if (min && max && min.inclusive && max.inclusive) return `${kind} ${min.value} to ${max.value}`;
  const parts: string[] = [];
  if (min) parts.push(`${min.inclusive ? '>=' : '>'} ${min.value}`);
  if (max) parts.push(`${max.inclusive ? '<=' : '<'} ${max.value}`);
  return parts.length ? `${kind} ${parts.join(' and ')}` : kind;
}

function stringRule(t: z.ZodString): string {
  let min: number | null = null;
  let max: number | null = null;
  for (const c of t._def.checks) {
    if (c.kind === 'min') min = c.value;
    else if (c.kind === 'max') max = c.value;
  }
  if (min !== null && max !== null) return `string of ${min} to ${max} characters`;
  if (min !== null) return min === 1 ? 'non-empty string' : `string of at least ${min} characters`;
  if (max !== null) return `string of at most ${max} characters`;
  return 'string';
}

/** The alternatives a value may take, each already formatted. */
function alternatives(t: z.ZodTypeAny): string[] {
  const p = peel(t);
  const v = p.valueType;
  if (v instanceof z.ZodNullable) return [...alternatives(v.unwrap()), code('null')];
  const c = p.core;
  if (c instanceof z.ZodLiteral) return [code(JSON.stringify(c.value))];
  if (c instanceof z.ZodEnum) return (c.options as string[]).map((o) => code(JSON.stringify(o)));
  if (c instanceof z.ZodUnion) return (c.options as z.ZodTypeAny[]).flatMap(alternatives);
  if (c instanceof z.ZodNumber) return [numberRule(c)];
  if (c instanceof z.ZodString) return [stringRule(c)];
  if (c instanceof z.ZodBoolean) return [code('true'), code('false')];
  if (c instanceof z.ZodArray) {
    const d = c._def as z.ZodArrayDef;
    return [`array of ${d.minLength?.value ?? 0} to ${d.maxLength?.value ?? 'any number of'} (${joinAlternatives(alternatives(c.element as z.ZodTypeAny))})`];
  }
  return [String((c._def as { typeName?: unknown }).typeName ?? 'any').replace(/^Zod/, '').toLowerCase()];
}

function joinAlternatives(alts: string[]): string {
  if (alts.length <= 1) return alts.join('');
  return `${alts.slice(0, -1).join(', ')} or ${alts[alts.length - 1]}`;
}

function envByKey(): Map<string, string> {
  const m = new Map<string, string>();
  for (const [name, spec] of Object.entries(ENV_OVERRIDES)) m.set(spec.key, name);
  return m;
}

function collect(schema: z.ZodTypeAny, prefix: string, env: Map<string, string>, out: ConfigKeyDoc[]): void {
  const p = peel(schema);
  if (p.core instanceof z.ZodObject) {
    for (const [name, child] of Object.entries(p.core.shape as Record<string, z.ZodTypeAny>)) {
      collect(child, prefix ? `${prefix}.${name}` : name, env, out);
    }
    return;
  }
  out.push({
    key: prefix,
    defaultJson: p.defaultValue ? JSON.stringify(p.defaultValue.value) : null,
    allowed: joinAlternatives(alternatives(schema)),
    env: env.get(prefix) ?? null,
    description: p.description,
  });
}

/** Every leaf key of the schema, in schema order, grouped by top-level section. */
export function configKeyDocs(): { section: string; keys: ConfigKeyDoc[] }[] {
  const env = envByKey();
  return Object.entries(configSchema.shape as Record<string, z.ZodTypeAny>).map(([section, schema]) => {
    const keys: ConfigKeyDoc[] = [];
    collect(schema, section, env, keys);
    return { section, keys };
  });
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
}

function envTypeText(type: 'string' | 'number' | 'auto-number'): string {
  if (type === 'number') return 'a number';
  if (type === 'auto-number') return 'a number or `auto`';
  return 'taken as a string';
}

/** The Markdown of docs/configuration.md. */
export function renderConfigDoc(): string {
  const lines: string[] = [];
  const push = (...l: string[]): void => {
    lines.push(...l);
  };
  push(
    `<!-- Generated from src/config/config-schema.ts by src/config/config-doc.ts. Do not edit by hand; regenerate with: ${REGENERATE_COMMAND} -->`,
    '',
    '# Configuration',
    '',
    'stagebox reads one JSON file, by default `/etc/stagebox/stagebox.json`. Another file is chosen with `--config PATH` ' +
      'or the `STAGEBOX_CONFIG` environment variable (`--config` wins). A file named that way must exist; the default file may be ' +
      'absent, and then every key takes its default. `--print-config` prints the effective configuration (defaults, file and ' +
      'environment merged) as JSON and exits.',
    '',
    `The file is one JSON object with these sections: ${joinAlternatives(Object.keys(configSchema.shape).map(code)).replace(/ or /, ' and ')}. ` +
      'Every key is optional. A minimal file:',
    '',
    '```json',
    '{ "capture": { "device": "hw:CARD=X32", "channels": 32, "format": "S32_LE" }, "server": { "port": 5100 } }',
    '```',
    '',
    '## Rules',
    '',
    '- Precedence: defaults < file < environment variables. An environment variable that is unset or empty is ignored.',
    '- Unknown keys, in the file or in a section, are errors, so a misspelt key never goes unnoticed.',
    '- An invalid configuration stops the service before it opens anything: it exits with code 2 and prints on stderr a ' +
      'message naming the key, the value it got and what is allowed.',
    '- Besides the per-key limits below, `capture.retryMaxMs` must be >= `capture.retryInitialMs`, ' +
      '`stream.heartbeatTimeoutMs` must be > `stream.heartbeatIntervalMs`, `mqtt.reconnectMaxMs` must be >= ' +
      '`mqtt.reconnectInitialMs`, `mqtt.certFile` and `mqtt.keyFile` are set together or not at all, ' +
      '`dashboard.latencyRedMs` must be > `dashboard.latencyAmberMs`, `recording.dir` (unless `"auto"`) must be inside one of ' +
      '`recording.drives` or inside `state.dir`, and every path of `recording.dir` and `recording.drives` must be absolute and ' +
      'normalised (no `..`, `.` or trailing `/`). Files named by ' +
      '`mqtt.caFile`, `mqtt.certFile`, `mqtt.keyFile` and `mqtt.credentialsFile` must be readable at start.',
    '- Every key is read once at start: a change takes effect only after a restart of the service.',
    '',
    '## Environment variables',
    '',
    '| variable | key | value |',
    '| --- | --- | --- |',
    '| `STAGEBOX_CONFIG` | (the file itself) | path of the config file |',
  );
  for (const [name, spec] of Object.entries(ENV_OVERRIDES)) {
    push(`| ${code(name)} | ${code(spec.key)} | ${envTypeText(spec.type)} |`);
  }
  push('');
  push(
    'A numeric variable must hold a decimal number such as `5100` (or `auto` where the table says so); anything else is a ' +
      'configuration error naming the variable. Every value is then checked against the same rules as a value from the file.',
  );
  for (const { section, keys } of configKeyDocs()) {
    push('', `## ${section}`, '', '| key | default | allowed | env variable | description |', '| --- | --- | --- | --- | --- |');
    for (const k of keys) {
      const def = k.defaultJson === null ? '(none)' : code(k.defaultJson);
      const env = k.env === null ? '' : code(k.env);
      push(`| ${code(k.key)} | ${cell(def)} | ${cell(k.allowed)} | ${env} | ${cell(k.description)} |`);
    }
  }
  push('');
  return lines.join('\n');
}
