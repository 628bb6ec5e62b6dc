import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { makeAlsaFixture, expectedWire, frameFromTop16, type AlsaFixture } from '../helpers/alsa-fixture';
import { soxInfo, soxSamples } from '../helpers/audio-tools';
import { api } from '../helpers/recording-api';
import { startService, stopAllServices, type ServiceProcess } from '../helpers/service-process';
import { describeSeqGaps, firstSeqGap, StreamClient } from '../helpers/stream-client';
import { waitFor } from '../helpers/wait';

/**
 * What a recording survives: SIGKILL mid-take, a drive that fills up, and a
 * drive that disappears mid-take. Real failures: the service is killed; the
 * drives are tmpfs mounts in a mount namespace of the service's own
 * (unshare -m), filled or lazily unmounted through nsenter. The mounts
 * exist only in that namespace (their names start with "rec-") and vanish
 * with it. Every take is then read back with sox and compared with what the
 * device delivered, and a listener proves the audio never stopped.
 */

const TOKEN = 'fault-token';
const CH = 4;
const PF = 128;
const isRoot = process.getuid?.() === 0;
const NEEDS_ROOT = isRoot ? false : 'needs root: mounts tmpfs drives in a private mount namespace (CI and the dev VM run as root)';

const root = mkdtempSync(path.join(os.tmpdir(), 'rec-faults-'));
const fixtures: AlsaFixture[] = [];
after(async () => {
  await stopAllServices();
  for (const f of fixtures) f.remove();
  rmSync(root, { recursive: true, force: true });
});

interface TakeView {
  id: string;
  state: string;
  dir: string;
  seconds: number;
  files: string[];
  endReason: string | null;
  error: string | null;
}

function fixture(pcmName: string): AlsaFixture {
  const fx = makeAlsaFixture({ format: 'S24_3LE', channels: CH, periodFrames: PF, pcmName });
  fixtures.push(fx);
  fx.start();
  return fx;
}

async function service(label: string, fx: AlsaFixture, recording: Record<string, unknown>, opts: { wrap?: string[]; stateDir?: string } = {}): Promise<ServiceProcess> {
  return startService({
    label,
    env: fx.env,
    ...(opts.wrap ? { wrap: opts.wrap } : {}),
    config: {
      capture: { device: fx.pcmName, channels: CH, format: 'S24_3LE', rate: 48000, periodFrames: PF },
      admin: { token: TOKEN },
      recording: { drives: [path.join(root, 'drives')], syncIntervalMs: 200, ...recording },
      ...(opts.stateDir ? { state: { dir: opts.stateDir } } : {}),
    },
  });
}

async function startTake(svc: ServiceProcess, body: object): Promise<TakeView> {
  const r = await api(svc.port, 'POST', '/api/recordings', { token: TOKEN, body });
  assert.equal(r.status, 201, r.body.toString());
  return r.json<{ take: TakeView }>().take;
}

async function recordingStatus(svc: ServiceProcess): Promise<{ state: string; take: TakeView | null; last: { id: string; reason: string; error: string | null; seconds: number } | null }> {
  return (await api(svc.port, 'GET', '/api/recordings', { token: TOKEN })).json<{ recording: never }>().recording;
}

/** Every channel of an interleaved 24-bit take file is the fixture's pattern from one common frame on; returns the frames. */
function checkTakeFile(file: string, channels: readonly number[]): number {
  const info = soxInfo(file);
  assert.deepEqual([info.channels, info.rate, info.bits], [channels.length, 48000, 24]);
  const s = soxSamples(file, 24);
  const frames = s.length / channels.length;
  const f0 = frameFromTop16((s[0]! >> 8) & 0xffff, channels[0]!);
  for (let i = 0; i < frames; i++) {
    for (let k = 0; k < channels.length; k++) {
      const want = expectedWire('S24_3LE', 'pcm24', f0 + i, channels[k]!);
      if (s[i * channels.length + k] !== want) assert.fail(`${path.basename(file)} frame ${i} channel ${channels[k]}: ${s[i * channels.length + k]}, the device delivered ${want}`);
    }
  }
  return frames;
}

/** Runs `args` inside the service's mount namespace. */
function inNs(svc: ServiceProcess, args: string[]): Buffer {
  return execFileSync('nsenter', ['-t', String(svc.proc.pid), '-m', ...args], { timeout: 20_000, maxBuffer: 1 << 28 });
}

/** A listener on every channel: the audio path's witness. */
async function listen(svc: ServiceProcess, label: string): Promise<StreamClient> {
  const c = await StreamClient.open(svc.port, label, { label });
  await c.subscribe([0, 1, 2, 3], 'pcm24');
  await c.waitForPackets(50, 10_000);
  return c;
}

function assertNoGap(c: StreamClient, from: number): void {
  const during = c.packetsFrom(from);
  assert.ok(during.length >= 200, `${during.length} packets while the drive failed`);
  assert.equal(firstSeqGap(during), -1, `seq gaps: ${describeSeqGaps(during)}`);
  assert.equal(c.closeInfo, null, 'the listener stayed connected');
}

describe('recording faults', { skip: NEEDS_ROOT }, () => {
  test('SIGKILL mid-take: the files on the drive are valid up to the last flush; the next start repairs the take to its last sample', async () => {
    const fx = fixture('reckill');
    const stateDir = path.join(root, 'kill-state');
    mkdirSync(stateDir, { recursive: true });
    let svc = await service('rec-kill', fx, { layout: 'multi' }, { stateDir });
    const take = await startTake(svc, { name: 'Killed', channels: [0, 1, 2, 3] });
    // Killed once the file's header declares 1.5 s (the writer rewrites it after every flush).
    const file = path.join(take.dir, 'Killed.wav');
    await waitFor(() => existsSync(file) && soxInfo(file).samples >= 1.5 * 48000, { timeoutMs: 15_000, what: 'a header declaring 1.5 s flushed' });
    svc.proc.kill('SIGKILL');
    await svc.waitForExit(5000);
    const before = checkTakeFile(file, [0, 1, 2, 3]);
    assert.ok(before >= 1.5 * 48000, `sox reads ${before} frames after SIGKILL; at least 1.5 s were flushed`);
    assert.equal(JSON.parse(readFileSync(path.join(take.dir, 'take.json'), 'utf8')).state, 'recording');

    svc = await service('rec-kill-2', fx, {}, { stateDir });
    await svc.waitForLog((l) => l.msg === 'take was interrupted; repaired up to the last sample on the drive', 10_000, 'the repair');
    const listed = (await api(svc.port, 'GET', '/api/recordings', { token: TOKEN })).json<{ takes: TakeView[] }>().takes.find((t) => t.id === take.id)!;
    assert.equal(listed.state, 'recovered');
    const after = checkTakeFile(file, [0, 1, 2, 3]);
    assert.ok(after >= before, `repaired: ${after} frames, ${before} before`);
    assert.equal(Math.round((after / 48000) * 1000) / 1000, listed.seconds);
    await svc.stop();
  });

  test('a drive that fills up (ENOSPC): the take ends "drive full", its file valid to that point; a health event; the audio never stops', async () => {
    const fx = fixture('recfull');
    const drive = path.join(root, 'drives', 'full');
    mkdirSync(drive, { recursive: true });
    const svc = await service('rec-full', fx, { minFreeMiB: 0 }, {
      wrap: ['unshare', '-m', '--propagation', 'private', 'sh', '-c', 'mount -t tmpfs -o size=768k rec-full "$0" && exec "$@"', drive],
    });
    assert.match(inNs(svc, ['findmnt', '-n', '-o', 'SOURCE,FSTYPE', drive]).toString(), /rec-full\s+tmpfs/);
    const listener = await listen(svc, 'full-listener');
    const mark = listener.packets.length;
    const take = await startTake(svc, { name: 'Full', drive });
    // 4 inputs x 24 bit x 48 kHz = 576 kB/s: the 768 kB fill up in about 1.3 s.
    const st = await waitFor(async () => {
      const r = await recordingStatus(svc);
      return r.state === 'idle' && r.last?.id === take.id ? r : undefined;
    }, { timeoutMs: 20_000, what: 'the take to end by itself' });
    assert.equal(st.last!.reason, 'drive full');
    assert.match(st.last!.error!, new RegExp(`^${take.dir.replace(/[.]/g, '\\.')}/0[1-4]\\.wav: ENOSPC: no space left on device, write$`));
    await listener.waitForPackets(mark + 300, 10_000);
    assertNoGap(listener, mark);
    const events = (await api(svc.port, 'GET', '/api/status')).json<{ events: { kind: string; fields: Record<string, unknown> }[] }>().events;
    const failed = events.find((e) => e.kind === 'recording-failed' && e.fields.take === take.id);
    assert.ok(failed, JSON.stringify(events.slice(-5)));
    assert.equal(failed.fields.reason, 'drive full');
    // Every file as the drive holds it: valid, the device's audio, all four the same length.
    const lengths = take.files.map((name, ch) => {
      const copy = path.join(root, `full-${name}`);
      writeFileSync(copy, inNs(svc, ['cat', path.join(take.dir, name)]));
      return checkTakeFile(copy, [ch]);
    });
    assert.equal(new Set(lengths).size, 1, `all files equally long: ${lengths}`);
    assert.ok(lengths[0]! > 0.5 * 48000, `${lengths[0]} frames kept`);
    assert.equal(Math.round((lengths[0]! / 48000) * 1000) / 1000, st.last!.seconds);
    // A drive with no space left takes no new take: refused up front, nothing created.
    inNs(svc, ['sh', '-c', 'dd if=/dev/zero of="$0/fill" bs=4k 2>/dev/null; true', drive]);
    const again = await api(svc.port, 'POST', '/api/recordings', { token: TOKEN, body: { drive } });
    assert.equal(again.status, 503);
    assert.deepEqual(again.json(), { code: 'drive-error', error: `only 0 MiB free on ${drive}; a take needs more than recording.minFreeMiB (0 MiB)` });
    assert.deepEqual(inNs(svc, ['ls', path.join(drive, 'stagebox')]).toString().trim().split('\n'), [path.basename(take.dir)]);
    listener.close();
    assert.equal((await svc.stop()).code, 0);
  });

  test('a drive that disappears mid-take (lazy unmount): the take ends "drive vanished", its files valid to the last flush, repaired when the drive is back', async () => {
    const fx = fixture('recgone');
    const drive = path.join(root, 'drives', 'stick');
    const keep = path.join(root, 'keep');
    mkdirSync(drive, { recursive: true });
    mkdirSync(keep, { recursive: true });
    // The bind mount at `keep` lets the test read the tmpfs after it is gone from the drive's path.
    const svc = await service('rec-gone', fx, {}, {
      wrap: ['unshare', '-m', '--propagation', 'private', 'sh', '-c', 'mount -t tmpfs -o size=256m rec-stick "$0" && mount --bind "$0" "$1" && shift && exec "$@"', drive, keep],
    });
    const listener = await listen(svc, 'gone-listener');
    const take = await startTake(svc, { name: 'Pulled', drive, channels: [1, 3] });
    let last = '';
    await waitFor(
      async () => {
        const r = await recordingStatus(svc);
        last = JSON.stringify(r);
        return (r.take?.seconds ?? 0) >= 1;
      },
      { timeoutMs: 15_000, what: '1 s recorded', describe: () => last },
    );
    const mark = listener.packets.length;
    inNs(svc, ['umount', '-l', drive]);
    const st = await waitFor(async () => {
      const r = await recordingStatus(svc);
      return r.state === 'idle' && r.last?.id === take.id ? r : undefined;
    }, { timeoutMs: 20_000, what: 'the take to end by itself' });
    assert.equal(st.last!.reason, 'drive vanished');
    assert.match(st.last!.error!, /is no longer (reachable|the folder the take was written to).*: the drive was unmounted or pulled$/);
    await listener.waitForPackets(mark + 300, 10_000);
    assertNoGap(listener, mark);
    const kept = path.join(keep, 'stagebox', path.basename(take.dir));
    const frames = ['02.wav', '04.wav'].map((name, i) => {
      const copy = path.join(root, `gone-${name}`);
      writeFileSync(copy, inNs(svc, ['cat', path.join(kept, name)]));
      return checkTakeFile(copy, [[1, 3][i]!]);
    });
    assert.equal(frames[0], frames[1]);
    assert.ok(frames[0]! >= 0.8 * 48000, `${frames[0]} frames valid after the drive vanished`);
    // The drive comes back: the take is listed, repaired.
    inNs(svc, ['mount', '--bind', keep, drive]);
    const listed = (await api(svc.port, 'GET', '/api/recordings', { token: TOKEN })).json<{ takes: TakeView[] }>().takes.find((t) => t.id === take.id);
    assert.ok(listed, 'the take is listed again');
    // Its take.json could not be written once the drive was gone: it still said "recording", so the box repaired it.
    assert.equal(listed.state, 'recovered');
    listener.close();
    assert.equal((await svc.stop()).code, 0);
  });
});
