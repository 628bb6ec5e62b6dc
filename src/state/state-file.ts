/**
 * The state file's format: a checksummed wrapper around the JSON document,
 * validated by the state schema. Pure: no I/O.
 */
import { createHash } from 'node:crypto';
import { ZodError, type ZodIssue } from 'zod';
import { describeConfigIssues } from '../config/config-errors';
import { stateSchema, STATE_VERSION, type StateDoc } from './state-schema';

export type Decoded = { ok: true; doc: StateDoc } | { ok: false; reason: string };

function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** Schema problems in the config-error style, at most `max` lines (a damaged file can have thousands). */
export function describeIssues(source: string, raw: unknown, err: ZodError, max = 5): string {
  const lines: string[] = [];
  for (const issue of err.issues.slice(0, max)) {
    if (issue.code === 'unrecognized_keys') {
      const at = issue.path.join('.');
      lines.push(`${source}: unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${at ? `${at}.${k}` : k}"`).join(', ')}`);
    } else {
      lines.push(describeConfigIssues(source, raw, new ZodError([issue as ZodIssue])));
    }
  }
  if (err.issues.length > max) lines.push(`${source}: ... and ${err.issues.length - max} more`);
  return lines.join('; ');
}

/**
 * The on-disk format: `{"sha256":"<hex>","body":"<JSON text of the document>"}`.
 * The hash covers the exact body text, so truncation, a flipped bit anywhere
 * in the body or the hash, and a half-written file all fail the check, not
 * only the damage that happens to break the JSON syntax.
 */
export function encodeState(doc: StateDoc): string {
  const body = JSON.stringify(doc);
  return JSON.stringify({ sha256: sha256Hex(body), body });
}

/** Inverse of encodeState; never throws, says why a file is rejected. */
export function decodeState(buf: Buffer): Decoded {
  if (buf.length === 0) return { ok: false, reason: 'empty file (0 bytes)' };
  let wrapper: unknown;
  try {
    wrapper = JSON.parse(buf.toString('utf8'));
  } catch (err) {
    return { ok: false, reason: `not valid JSON, truncated or damaged (${(err as Error).message}; ${buf.length} bytes)` };
  }
  const w = wrapper as Record<string, unknown> | null;
  if (
    w === null ||
    typeof w !== 'object' ||
    Array.isArray(w) ||
    Object.keys(w).length !== 2 ||
    typeof w.sha256 !== 'string' ||
    !/^[0-9a-f]{64}$/.test(w.sha256) ||
    typeof w.body !== 'string'
  ) {
    return { ok: false, reason: 'not a checksummed state file; allowed: {"sha256": "<64 hex digits>", "body": "<JSON text>"}' };
  }
  const computed = sha256Hex(w.body);
  if (computed !== w.sha256) {
    return { ok: false, reason: `checksum mismatch (stored ${w.sha256.slice(0, 12)}…, computed ${computed.slice(0, 12)}…): the file is damaged` };
  }
  let raw: unknown;
  try {
    raw = JSON.parse(w.body);
  } catch (err) {
    return { ok: false, reason: `body is not valid JSON (${(err as Error).message})` };
  }
  const version = (raw as { version?: unknown } | null)?.version;
  if (typeof version === 'number' && version !== STATE_VERSION) {
    // Most likely written by newer firmware before a downgrade: keep it aside, intact.
    return { ok: false, reason: `version: got ${version}; allowed: ${STATE_VERSION} (this firmware's state format)` };
  }
  const parsed = stateSchema.safeParse(raw);
  if (!parsed.success) return { ok: false, reason: `does not match the state schema: ${describeIssues('state', raw, parsed.error)}` };
  return { ok: true, doc: parsed.data };
}
