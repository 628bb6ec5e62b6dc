import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { startService, stopAllServices } from '../helpers/service-process';
import { withTimeout } from '../helpers/wait';

/**
 * Keeps the recording session of docs/protocol.md section 10 ("Recording
 * session") true: every `>` line is sent to a real service as written, and
 * every `<` line must be the next message the box sends, field for field.
 * A value written "…" in the document stands for any value (times, sizes,
 * paths), a string ending in "…" for any string that starts the same; the
 * take id the document uses is replaced by the real one.
 */

const DOC_PATH = path.resolve(__dirname, '../../../docs/protocol.md');
const DOC_TAKE = '2026-11-25_140000_Soundcheck';
const root = mkdtempSync(path.join(os.tmpdir(), 'rec-vectors-'));

after(async () => {
  await stopAllServices();
  rmSync(root, { recursive: true, force: true });
});

function session(): { dir: '>' | '<'; text: string }[] {
  const doc = readFileSync(DOC_PATH, 'utf8');
  const blocks = [...doc.matchAll(/^```session recording\n([\s\S]*?)^```$/gm)];
  assert.equal(blocks.length, 1, 'docs/protocol.md holds exactly one ```session recording block');
  return blocks[0]![1]!
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => {
      assert.match(l, /^[<>] \{/, `session line: ${l}`);
      return { dir: l[0] as '>' | '<', text: l.slice(2) };
    });
}

/** Field-for-field equality; "…" in `want` matches anything. Returns the first difference. */
function diff(want: unknown, got: unknown, at: string, take: string): string | null {
  if (want === '…') return null;
  if (typeof want === 'string') {
    const w = want.replaceAll(DOC_TAKE, take);
    // A string ending in "…" stands for any string that starts the same.
    const same = w.endsWith('…') ? typeof got === 'string' && got.startsWith(w.slice(0, -1)) : w === got;
    return same ? null : `${at}: ${JSON.stringify(got)}, the document says ${JSON.stringify(want)}`;
  }
  if (Array.isArray(want)) {
    if (!Array.isArray(got) || got.length !== want.length) return `${at}: ${JSON.stringify(got)}, the document says ${JSON.stringify(want)}`;
    for (let i = 0; i < want.length; i++) {
      const d = diff(want[i], got[i], `${at}[${i}]`, take);
      if (d) return d;
    }
    return null;
  }
  if (want !== null && typeof want === 'object') {
    if (got === null || typeof got !== 'object' || Array.isArray(got)) return `${at}: ${JSON.stringify(got)} is not an object`;
    const wk = Object.keys(want).sort();
    const gk = Object.keys(got).sort();
    if (wk.join(',') !== gk.join(',')) return `${at}: fields ${gk.join(', ')}; the document has ${wk.join(', ')}`;
    for (const k of wk) {
      const d = diff((want as Record<string, unknown>)[k], (got as Record<string, unknown>)[k], `${at}.${k}`, take);
      if (d) return d;
    }
    return null;
  }
  return want === got ? null : `${at}: ${JSON.stringify(got)}, the document says ${JSON.stringify(want)}`;
}

test('the recording session of docs/protocol.md, replayed against the box', async () => {
  const svc = await startService({
    label: 'rec-vectors',
    config: { capture: { device: 'test-signal', channels: 4 }, admin: { token: 'sesame-4711' }, recording: { drives: [root] }, mqtt: { enabled: false } },
  });
  const ws = new WebSocket(`ws://127.0.0.1:${svc.port}/`);
  const inbox: string[] = [];
  let wake: (() => void) | null = null;
  ws.on('message', (data: Buffer, binary: boolean) => {
    if (binary) return;
    inbox.push(data.toString('utf8'));
    wake?.();
  });
  await withTimeout(new Promise((r) => ws.once('open', r)), 5000, 'the WebSocket to open');
  const next = async (): Promise<string> => {
    if (inbox.length === 0) await withTimeout(new Promise<void>((r) => (wake = r)), 10_000, 'the next message from the box');
    return inbox.shift()!;
  };
  let take = DOC_TAKE;
  for (const [i, line] of session().entries()) {
    if (line.dir === '>') {
      ws.send(line.text.replaceAll(DOC_TAKE, take));
      continue;
    }
    const got = JSON.parse(await next()) as Record<string, unknown>;
    const id = (got.take as { id?: string } | undefined)?.id;
    if (take === DOC_TAKE && typeof id === 'string') take = id;
    const problem = diff(JSON.parse(line.text), got, `line ${i + 1} (${JSON.parse(line.text).type})`, take);
    assert.equal(problem, null, `${problem}\n  the box sent: ${JSON.stringify(got)}`);
  }
  ws.close();
});
