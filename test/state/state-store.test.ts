import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { StateDirError, StateStore, StateUpdateError, encodeState } from '../../src/state/state-store';
import { emptyState, type ClientState, type MixJson, type StateDoc } from '../../src/state/state-schema';
import { sleep, withTimeout } from '../helpers/wait';

const fixture = path.resolve(__dirname, '../fixtures/state-writer.js');

type LogLine = { level: number; msg: string; [k: string]: unknown };

function capturingLog(): { log: pino.Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as LogLine) });
  return { log, lines };
}

function tempDir(): string {
  return mkdtempSync(path.join(tmpdir(), 'stagebox-state-'));
}

function mix(gainDb: number | null): MixJson {
  return {
    channels: { '1': { gainDb, pan: -0.5, mute: false, solo: false }, '2': { gainDb: null, pan: 1, mute: true, solo: true } },
    masterDb: null,
    output: 'mono',
    limiter: { enabled: true, ceilingDb: -3 },
  };
}

function client(name: string, lastSeen: string): ClientState {
  return { name, lastSeen, mode: 'mix', codec: 'pcm16', mix: mix(-6), presets: { Verse: mix(0), Solo: mix(10) } };
}

function sampleDoc(): StateDoc {
  const doc = emptyState(new Date('2024-05-01T20:00:00.000Z'));
  doc.channels['1'] = { name: 'Kick', color: '#ff8800', group: 'Drums' };
  doc.channels['3'] = { name: 'Keys L', link: 4 };
  doc.clients['phone-a'] = client('Anna (bass)', '2024-05-01T19:59:00.000Z');
  return doc;
}

async function loaded(dir: string, opts: { maxClients?: number; debounceMs?: number } = {}) {
  const { log, lines } = capturingLog();
  const store = new StateStore({ dir, log, ...opts });
  const doc = await store.load();
  return { store, doc, lines };
}

test('state written and flushed is loaded back unchanged by a new store on the same directory', async () => {
  const dir = tempDir();
  const a = await loaded(dir);
  assert.deepEqual(a.doc.clients, {}, 'a fresh directory starts with defaults');
  assert.ok(a.lines.some((l) => l.level === 30 && /no state file/.test(l.msg)), 'a missing file is logged at info');
  const want = sampleDoc();
  a.store.update((s) => {
    s.channels = want.channels;
    s.clients = want.clients;
  });
  await a.store.flush();
  assert.equal(a.store.writes, 1);
  const b = await loaded(dir);
  assert.deepEqual(b.doc, a.store.get());
  assert.deepEqual(b.doc.clients, want.clients);
  assert.deepEqual(b.doc.channels, want.channels);
  await a.store.stop();
  await b.store.stop();
});

test('a missing state directory is created with mode 0750', async () => {
  const dir = path.join(tempDir(), 'var', 'lib', 'stagebox');
  const { store } = await loaded(dir);
  assert.equal(statSync(dir).mode & 0o777, 0o750 & ~process.umask());
  await store.stop();
});

test('after SIGKILL at random moments of a tight write loop the last complete state is on disk', async (t) => {
  const dir = tempDir();
  const WRITER = 'crash-test-writer';
  let lastFlushed = 0;
  let tempsSeen = 0;
  for (let kill = 0; kill < 10; kill++) {
    const child = spawn(process.execPath, [fixture, dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let reported = lastFlushed;
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const firstLine = new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const complete = out.slice(0, out.lastIndexOf('\n')).split('\n');
        const n = Number(complete[complete.length - 1]);
        if (Number.isFinite(n) && n > 0) {
          reported = n;
          resolve();
        }
      });
      child.on('exit', (code) => reject(new Error(`state-writer exited early (code ${code}): ${err}`)));
    });
    await withTimeout(firstLine, 15_000, 'state-writer printed nothing in 15 s');
    // The kill lands at a random moment of the write loop: the random delay is this test's input, not a wait
    // for something to happen (whatever the moment, the last complete state must be on disk).
    const delay = 50 + Math.floor(Math.random() * 251);
    await sleep(delay);
    child.kill('SIGKILL');
    await once(child, 'close'); // all stdout read
    assert.equal(child.signalCode, 'SIGKILL', `the writer was still running when killed (stderr: ${err})`);

    if (readdirSync(dir).some((n) => n.includes('.tmp-'))) tempsSeen++;
    const { store, doc, lines } = await loaded(dir);
    const problems = lines.filter((l) => l.level >= 40);
    assert.deepEqual(problems, [], `kill ${kill + 1} after ${delay} ms left a file that was rejected`);
    assert.ok(doc.clients[WRITER], `kill ${kill + 1}: the document is complete (has the writer's client)`);
    assert.equal(Object.keys(doc.clients).length, 21, `kill ${kill + 1}: the document is complete (all clients)`);
    const counter = Number(doc.clients[WRITER]!.name);
    assert.ok(counter >= reported, `kill ${kill + 1} after ${delay} ms: on disk ${counter}, child reported ${reported} as flushed`);
    assert.ok(counter <= reported + 1, `kill ${kill + 1}: on disk ${counter} is at most one write past the last report ${reported}`);
    t.diagnostic(`kill ${kill + 1} after ${delay} ms: reported ${reported}, on disk ${counter}`);
    lastFlushed = counter;
    await store.stop();
  }
  assert.deepEqual(readdirSync(dir).filter((n) => n.includes('.corrupt-')), [], 'nothing was ever moved aside');
  t.diagnostic(`${tempsSeen} of 10 kills left a temp file behind (killed mid-write)`);
});

function writtenFile(dir: string): string {
  const file = path.join(dir, 'state.json');
  writeFileSync(file, encodeState(sampleDoc()));
  return file;
}

function flipOneLetter(text: string): string {
  // Inside a string value, so the JSON stays valid and only the checksum can tell.
  const i = text.indexOf('Anna');
  return text.slice(0, i) + String.fromCharCode(text.charCodeAt(i) ^ 0x01) + text.slice(i + 1);
}

const damaged: { name: string; content: (good: string) => string | Buffer; reason: RegExp }[] = [
  { name: 'a truncated file', content: (good) => good.slice(0, Math.floor(good.length / 2)), reason: /not valid JSON/ },
  { name: 'a file with one flipped byte', content: (good) => flipOneLetter(good), reason: /checksum mismatch/ },
  {
    name: 'a file with one flipped bit in a non-ASCII byte',
    content: () => {
      const doc = sampleDoc();
      doc.channels['1']!.name = 'Kück';
      const bytes = Buffer.from(encodeState(doc));
      // The second byte of "ü" becomes invalid UTF-8: decoding must not paper over it.
      bytes[bytes.indexOf(Buffer.from('ü')) + 1]! ^= 0x40;
      return bytes;
    },
    reason: /checksum mismatch/,
  },
  {
    name: 'valid JSON with a correct checksum that fails the schema',
    content: () => {
      const doc = sampleDoc() as unknown as { clients: Record<string, { mix: { channels: Record<string, { pan: number }> } }> };
      doc.clients['phone-a']!.mix.channels['1']!.pan = 3;
      return encodeState(doc as unknown as StateDoc);
    },
    reason: /clients\.phone-a\.mix\.channels\.1\.pan: got 3; allowed: a number <= 1/,
  },
  { name: 'a plain document without the checksum wrapper', content: () => JSON.stringify(sampleDoc()), reason: /not a checksummed state file/ },
  {
    name: 'a document from a newer firmware',
    content: () => encodeState({ ...sampleDoc(), version: 2 } as unknown as StateDoc),
    reason: /version: got 2; allowed: 1/,
  },
  { name: 'an empty file', content: () => '', reason: /empty file/ },
];

for (const c of damaged) {
  test(`${c.name} is moved aside to state.json.corrupt-*, load returns defaults and the log says why`, async () => {
    const dir = tempDir();
    const file = writtenFile(dir);
    const bad = c.content(readFileSync(file, 'utf8'));
    writeFileSync(file, bad);
    const { store, doc, lines } = await loaded(dir);
    assert.deepEqual(doc.clients, {});
    assert.deepEqual(doc.channels, {});
    assert.equal(existsSync(file), false, 'state.json itself is gone');
    const aside = readdirSync(dir).filter((n) => n.startsWith('state.json.corrupt-'));
    assert.equal(aside.length, 1);
    assert.match(aside[0]!, /^state\.json\.corrupt-\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.deepEqual(readFileSync(path.join(dir, aside[0]!)), Buffer.from(bad), 'the damaged bytes are kept for inspection');
    const warn = lines.find((l) => l.level === 40);
    assert.ok(warn, 'a warning is logged');
    assert.match(String(warn.reason), c.reason);
    assert.equal(warn.movedTo, path.join(dir, aside[0]!));
    assert.match(warn.msg, new RegExp(aside[0]!.replace(/\./g, '\\.')));
    // The service carries on: the next save writes a good file.
    store.update((s) => void (s.channels['1'] = { name: 'Kick' }));
    await store.stop();
    assert.deepEqual((await loaded(dir)).doc.channels, { '1': { name: 'Kick' } });
  });
}

test('temp files left by interrupted writes are removed at load and the good file is kept', async () => {
  const dir = tempDir();
  writtenFile(dir);
  writeFileSync(path.join(dir, 'state.json.tmp-12345'), '{"sha256":"00');
  writeFileSync(path.join(dir, `state.json.tmp-${process.pid}`), '');
  const { store, doc, lines } = await loaded(dir);
  assert.deepEqual(readdirSync(dir), ['state.json']);
  assert.equal(doc.clients['phone-a']?.name, 'Anna (bass)');
  assert.equal(lines.filter((l) => /temp file/.test(l.msg)).length, 2, 'each removal is logged');
  await store.stop();
});

test('only the newest moved-aside files are kept, so repeated damage cannot fill the disk', async () => {
  const dir = tempDir();
  for (let i = 0; i < 7; i++) writeFileSync(path.join(dir, `state.json.corrupt-2024-01-0${i + 1}T00:00:00.000Z`), 'x');
  writeFileSync(path.join(dir, 'state.json'), 'garbage');
  const { store } = await loaded(dir);
  const aside = readdirSync(dir).filter((n) => n.startsWith('state.json.corrupt-')).sort();
  assert.equal(aside.length, 5);
  assert.equal(aside[0], 'state.json.corrupt-2024-01-04T00:00:00.000Z');
  await store.stop();
});

test('with maxClients 3 and 5 clients the 2 seen longest ago are forgotten', async () => {
  const dir = tempDir();
  const { store, lines } = await loaded(dir, { maxClients: 3 });
  store.update((s) => {
    s.clients['c'] = client('C', '2024-05-01T10:00:00.000Z');
    s.clients['a'] = client('A', '2024-05-01T08:00:00.000Z');
    s.clients['e'] = client('E', '2024-05-01T12:00:00.000Z');
    s.clients['b'] = client('B', '2024-05-01T09:00:00+00:00');
    s.clients['d'] = client('D', '2024-05-01T13:00:00+02:00'); // 11:00Z
  });
  assert.deepEqual(Object.keys(store.get().clients).sort(), ['c', 'd', 'e']);
  assert.ok(lines.some((l) => l.forgotten === 2 && l.maxClients === 3), 'how many were forgotten is logged');
  await store.stop();
  const again = await loaded(dir, { maxClients: 2 });
  assert.deepEqual(Object.keys(again.doc.clients).sort(), ['d', 'e'], 'a lower limit applies to a loaded file too');
  await again.store.stop();
  assert.deepEqual(Object.keys((await loaded(dir)).doc.clients).sort(), ['d', 'e'], 'and that is persisted');
});

/** Counts the store's disk writes as they start (the `writes` figure only counts completed ones). */
function writeStarts(t: TestContext, store: StateStore): { callCount(): number } {
  return t.mock.method((store as unknown as { disk: { writeAtomic(text: string): Promise<void> } }).disk, 'writeAtomic').mock;
}

test('100 updates within the debounce window cause one write, debounceMs after the first, with the last value (mocked clock)', async (t) => {
  const dir = tempDir();
  const { store } = await loaded(dir, { debounceMs: 200 });
  const started = writeStarts(t, store);
  t.mock.timers.enable({ apis: ['setTimeout'] });
  for (let i = 1; i <= 100; i++) {
    store.update((s) => void (s.channels['1'] = { name: `take ${i}` }));
    t.mock.timers.tick(1);
  }
  t.mock.timers.tick(99);
  assert.equal(started.callCount(), 0, 'nothing is written before the debounce delay (199 ms)');
  t.mock.timers.tick(1);
  assert.equal(started.callCount(), 1, 'the write starts debounceMs after the first update');
  await store.flush();
  assert.equal(store.writes, 1);
  assert.equal((await loaded(dir)).doc.channels['1']?.name, 'take 100');
  await store.stop();
  assert.equal(started.callCount(), 1, 'nothing was left to write');
});

test('a change late in the window does not push the write back: someone riding a fader is still saved every debounceMs (mocked clock)', async (t) => {
  const dir = tempDir();
  const { store } = await loaded(dir, { debounceMs: 200 });
  const started = writeStarts(t, store);
  t.mock.timers.enable({ apis: ['setTimeout'] });
  store.update((s) => void (s.channels['1'] = { name: 'early' }));
  t.mock.timers.tick(150);
  store.update((s) => void (s.channels['2'] = { name: 'late' }));
  t.mock.timers.tick(50);
  assert.equal(started.callCount(), 1, 'written 200 ms after the first change, not 200 ms after the last');
  await store.flush();
  const doc = (await loaded(dir)).doc;
  assert.deepEqual([doc.channels['1']?.name, doc.channels['2']?.name], ['early', 'late']);
  // The next change starts a new window of its own.
  store.update((s) => void (s.channels['1'] = { name: 'next' }));
  t.mock.timers.tick(199);
  assert.equal(started.callCount(), 1);
  t.mock.timers.tick(1);
  assert.equal(started.callCount(), 2);
  await store.stop();
  assert.equal((await loaded(dir)).doc.channels['1']?.name, 'next');
});

test('a change made while a write is in flight is written by one more write', async () => {
  const dir = tempDir();
  const { store } = await loaded(dir, { debounceMs: 0 });
  store.update((s) => void (s.channels['1'] = { name: 'first' }));
  const first = store.flush();
  store.update((s) => void (s.channels['1'] = { name: 'second' }));
  await first;
  await store.flush();
  assert.equal((await loaded(dir)).doc.channels['1']?.name, 'second');
  assert.equal(store.writes, 2);
  await store.stop();
});

test('an update that breaks the schema is refused with the key and the rule, and the state is unchanged', async () => {
  const dir = tempDir();
  const { store } = await loaded(dir);
  store.update((s) => void (s.channels['1'] = { name: 'Kick' }));
  assert.throws(
    () => store.update((s) => void (s.channels['1'] = { name: 'Kick', color: 'red' })),
    (err: unknown) => err instanceof StateUpdateError && /channels\.1\.color: got "red"; allowed: a colour as "#rrggbb"/.test(err.message),
  );
  assert.deepEqual(store.get().channels['1'], { name: 'Kick' });
  await store.stop();
});

test('a state dir that cannot be created gives an error naming the path and the errno', async () => {
  const file = path.join(tempDir(), 'a-regular-file');
  writeFileSync(file, '');
  const dir = path.join(file, 'state');
  const { log } = capturingLog();
  await assert.rejects(new StateStore({ dir, log }).load(), (err: unknown) => {
    assert.ok(err instanceof StateDirError);
    assert.equal(err.path, dir);
    assert.equal(err.code, 'ENOTDIR');
    assert.equal(err.message, `state dir ${dir}: cannot create it (ENOTDIR)`);
    return true;
  });
});

test('a state dir path that is a regular file gives an error naming the path', async () => {
  const dir = path.join(tempDir(), 'not-a-dir');
  writeFileSync(dir, '');
  const { log } = capturingLog();
  await assert.rejects(new StateStore({ dir, log }).load(), (err: unknown) => err instanceof StateDirError && err.message.includes(dir) && /\((EEXIST|ENOTDIR)\)/.test(err.message));
});

test('updateClient changes one client, refuses an invalid entry, forgets the oldest beyond the limit and persists', async () => {
  const dir = tempDir();
  const { store } = await loaded(dir, { maxClients: 2 });
  store.updateClient('a', () => client('A', '2024-05-01T08:00:00.000Z'));
  store.updateClient('b', () => client('B', '2024-05-01T09:00:00.000Z'));
  store.updateClient('a', (c) => {
    assert.ok(c);
    c.mix!.channels['1']!.gainDb = null;
    return c;
  });
  assert.equal(store.get().clients['a']?.mix?.channels['1']?.gainDb, null);
  assert.throws(
    () => store.updateClient('a', (c) => ({ ...c!, mix: { ...c!.mix!, limiter: { enabled: true, ceilingDb: 3 } } })),
    (err: unknown) => err instanceof StateUpdateError && /clients\.a: mix\.limiter\.ceilingDb: got 3; allowed: a number <= 0/.test(err.message),
  );
  assert.equal(store.get().clients['a']?.mix?.limiter.ceilingDb, -3, 'the refused change left the client as it was');
  store.updateClient('c', () => client('C', '2024-05-01T10:00:00.000Z'));
  assert.deepEqual(Object.keys(store.get().clients).sort(), ['b', 'c'], 'the client seen longest ago was forgotten');
  store.updateClient('b', () => null);
  await store.stop();
  assert.deepEqual(Object.keys((await loaded(dir)).doc.clients), ['c']);
});
