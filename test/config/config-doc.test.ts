import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { configSchema, ENV_OVERRIDES } from '../../src/config/config-schema';
import { configKeyDocs, renderConfigDoc, REGENERATE_COMMAND } from '../../src/config/config-doc';

// Compiled to dist/test/appliance/, so the repo root is three levels up.
const DOC_PATH = path.resolve(__dirname, '../../../docs/configuration.md');
const STALE = `docs/configuration.md is out of date with src/config/config-schema.ts; regenerate it with \`${REGENERATE_COMMAND}\``;

/** Leaf keys found independently of config-doc.ts, so a walker bug that skips keys cannot hide itself. */
function leafKeys(schema: z.ZodTypeAny, prefix: string): string[] {
  let t = schema;
  while (t instanceof z.ZodDefault || t instanceof z.ZodOptional || t instanceof z.ZodNullable || t instanceof z.ZodEffects) {
    t = t instanceof z.ZodEffects ? t.innerType() : t instanceof z.ZodDefault ? t._def.innerType : t.unwrap();
  }
  if (!(t instanceof z.ZodObject)) return [prefix];
  return Object.entries(t.shape as Record<string, z.ZodTypeAny>).flatMap(([k, v]) => leafKeys(v, prefix ? `${prefix}.${k}` : k));
}

test('docs/configuration.md is exactly what renderConfigDoc() renders', () => {
  const doc = readFileSync(DOC_PATH, 'utf8');
  assert.ok(doc === renderConfigDoc(), STALE);
});

test('every leaf key of the schema is documented with its default', () => {
  const doc = readFileSync(DOC_PATH, 'utf8');
  const keys = leafKeys(configSchema, '');
  assert.ok(keys.length >= 20, `expected the full schema, found ${keys.length} keys`);
  const defaults = configSchema.parse({}) as Record<string, unknown>;
  for (const key of keys) {
    // Keys may nest deeper than section.name (mqtt.homeAssistant.enabled).
    const def = key.split('.').reduce<unknown>((node, part) => (node as Record<string, unknown>)[part], defaults);
    const row = doc.split('\n').find((l) => l.startsWith(`| \`${key}\` |`));
    assert.ok(row, `key ${key} has no row in docs/configuration.md; ${STALE}`);
    assert.ok(row.includes(`\`${JSON.stringify(def)}\``), `row of ${key} lacks its default; ${STALE}`);
  }
});

test('the rendered doc covers sections, env variables and the rules', () => {
  const doc = renderConfigDoc();
  for (const section of Object.keys(configSchema.shape)) assert.match(doc, new RegExp(`^## ${section}$`, 'm'));
  for (const [name, spec] of Object.entries(ENV_OVERRIDES)) {
    const row = doc.split('\n').find((l) => l.startsWith(`| \`${spec.key}\` |`));
    assert.ok(row?.includes(`\`${name}\``), `env ${name} is not shown on the row of ${spec.key}`);
  }
  for (const phrase of ['/etc/stagebox/stagebox.json', '--config PATH', 'STAGEBOX_CONFIG', 'code 2', 'Unknown keys', 'restart']) {
    assert.ok(doc.includes(phrase), `intro lacks ${JSON.stringify(phrase)}`);
  }
  assert.ok(doc.endsWith('\n') && !doc.endsWith('\n\n'), 'one trailing newline');
});

test('allowed values are derived from the schema checks', () => {
  const byKey = new Map(configKeyDocs().flatMap((s) => s.keys).map((k) => [k.key, k]));
  assert.equal(byKey.get('capture.channels')?.allowed, '`"auto"` or integer 1 to 64');
  assert.equal(byKey.get('capture.rate')?.allowed, '`44100`, `48000` or `96000`');
  assert.equal(byKey.get('capture.wavFile')?.allowed, 'non-empty string or `null`');
  assert.equal(byKey.get('capture.wavFile')?.defaultJson, 'null');
  assert.equal(byKey.get('server.port')?.allowed, 'integer 0 to 65535');
  assert.equal(byKey.get('server.port')?.env, 'STAGEBOX_PORT');
  assert.equal(byKey.get('stream.sendQueuePackets')?.env, null);
  assert.match(byKey.get('log.level')?.allowed ?? '', /^`"fatal"`, .* or `"silent"`$/);
  for (const k of byKey.values()) assert.ok(k.description.length > 0, `${k.key} has no description`);
});
