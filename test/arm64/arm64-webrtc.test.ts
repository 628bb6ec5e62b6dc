import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { realpathSync, rmSync } from 'node:fs';
import path from 'node:path';
import { checkPackets, makeAlsaFixture, type AlsaFixture } from '../helpers/alsa-fixture';
import { ARM64_MODULES, ARM64_NODE, QEMU, WAIT_MS, mappedFiles, stageApp } from '../helpers/arm64';
import { REPO_ROOT, startService, stopAllServices, type ServiceProcess } from '../helpers/service-process';
import { StreamClient } from '../helpers/stream-client';
import { WeriftBrowser } from '../helpers/werift-browser';
import { waitFor } from '../helpers/wait';
import { KIND, parseBoxDatagram, parsePacket, type ParsedPacket } from '../../src/protocol';

/**
 * Audio over a WebRTC data channel (docs/protocol.md §13) from the service on
 * arm64 under qemu (see arm64-service.test.ts): werift, DTLS and SCTP are
 * JavaScript, so the box half runs as aarch64 code in the arm64 Node, from
 * the cross-built node_modules. The browser's half is werift on the host
 * (test/helpers/werift-browser.ts), offering over the client's WebSocket as
 * test/transport/webrtc-audio.test.ts does on x86.
 *
 * NODE_DEBUG=module makes the service's Node log every file it loads to
 * stderr: that is where this test sees which werift the arm64 process runs.
 */

const CHANNELS = 8;
const PERIOD = 128;
/** Two channels of pcm16: 552-byte packets, so a packet and its redundant copy fit one datagram (udp.maxDatagramBytes, 1472). */
const SUBSCRIBED = [6, 1];
/** Distinct packets checked against the source: 0.4 s of audio at 128 frames a packet. */
const MIN_CHECKED = 150;

let app: string | null = null;
let fx: AlsaFixture | null = null;
const browsers: WeriftBrowser[] = [];

after(async () => {
  for (const b of browsers) await b.close();
  await stopAllServices();
  fx?.remove();
  if (app) rmSync(app, { recursive: true, force: true });
});

/** Every §5 packet in the AUDIO datagrams, the first copy of each seq kept; a later copy must be the same bytes. */
function packetsOf(messages: readonly Buffer[]): { packets: ParsedPacket[]; copies: number; problems: string[] } {
  const first = new Map<number, Uint8Array>();
  const problems: string[] = [];
  let copies = 0;
  for (const [i, m] of messages.entries()) {
    const d = parseBoxDatagram(m);
    if (d.kind !== KIND.AUDIO) {
      problems.push(`message ${i}: datagram kind ${d.kind}, expected ${KIND.AUDIO} (AUDIO)`);
      continue;
    }
    for (const bytes of d.packets) {
      const seq = parsePacket(bytes).seq;
      const seen = first.get(seq);
      if (!seen) {
        first.set(seq, bytes);
        continue;
      }
      copies++;
      if (!Buffer.from(seen).equals(Buffer.from(bytes))) problems.push(`message ${i}: the copy of seq ${seq} differs from its first copy`);
    }
  }
  const packets = [...first.keys()].sort((a, b) => a - b).map((seq) => parsePacket(first.get(seq)!));
  return { packets, copies, problems };
}

/** Files the process loaded as modules, from NODE_DEBUG=module's `load "<file>" for module` lines. */
function loadedModules(stderr: string): string[] {
  return [...stderr.matchAll(/^MODULE \d+: load "([^"]+)" for module /gm)].map((m) => m[1]!);
}

describe('the service on arm64 under qemu, answering a WebRTC offer from an x86 werift peer', () => {
  let svc: ServiceProcess;
  before(async () => {
    app = stageApp();
    fx = makeAlsaFixture({ format: 'S32_LE', channels: CHANNELS, periodFrames: PERIOD, pcmName: 'sb_arm64_rtc' });
    fx.start();
    svc = await startService({
      label: 'arm64-webrtc',
      runtime: { command: QEMU, args: [ARM64_NODE], appRoot: app },
      env: { ...fx.env, NODE_DEBUG: 'module' },
      startTimeoutMs: WAIT_MS,
      config: {
        capture: { device: fx.pcmName, channels: CHANNELS, format: 'S32_LE', rate: 48000, periodFrames: PERIOD },
        mqtt: { enabled: false },
        // The handshakes (ICE, DTLS, SCTP) run at emulated speed: the most the schema allows before the box gives up.
        webrtc: { maxPeers: 1, connectTimeoutMs: 60_000 },
      },
    });
  });

  test('a pcm16 subscription moves to the data channel, and every packet that arrives over it is the source, bit-exact', async () => {
    const c = await StreamClient.open(svc.port, 'arm64-webrtc');
    const welcome = c.messages.find((m) => m.type === 'welcome');
    assert.deepEqual(welcome?.transports, ['ws', 'udp', 'webrtc']);
    await c.subscribe(SUBSCRIBED, 'pcm16', WAIT_MS);

    const { browser, sdp } = await WeriftBrowser.offer();
    browsers.push(browser);
    c.send({ type: 'webrtc-offer', sdp });
    const answer = await c.waitForMessage('webrtc-answer', { timeoutMs: WAIT_MS });
    await browser.accept(String(answer.sdp));
    await waitFor(() => browser.channel.readyState === 'open', { timeoutMs: WAIT_MS, what: 'the audio channel open on the host side', describe: () => browser.channel.readyState });

    // Step 3 of §13; the box says "audio":"webrtc" in its answer if its end of the channel is open already, or later on its own.
    const from = c.messages.length;
    c.send({ type: 'transport', transport: 'webrtc', redundancy: 1 });
    await c.waitForMessage('transport', { from, timeoutMs: WAIT_MS, pred: (m) => m.audio === 'webrtc' });
    await waitFor(() => browser.received.length >= MIN_CHECKED + 10, {
      timeoutMs: WAIT_MS,
      what: `${MIN_CHECKED + 10} datagrams over the data channel`,
      describe: () => `${browser.received.length} datagrams; box messages: ${JSON.stringify(c.messages.slice(-3))}`,
    });
    c.close();

    const got = packetsOf(browser.received);
    assert.deepEqual(got.problems.slice(0, 10), [], `${got.problems.length} problem(s) in the datagrams`);
    assert.ok(got.copies > 0, 'no redundant copy in any datagram: the box did not apply redundancy 1');
    const r = checkPackets(got.packets, 'S32_LE', 'pcm16', SUBSCRIBED, PERIOD);
    assert.deepEqual(r.problems.slice(0, 10), [], `${r.problems.length} problem(s)`);
    assert.ok(r.checked >= MIN_CHECKED, `only ${r.checked} packets checked (of ${got.packets.length})`);
    assert.ok(r.contiguousPairs >= MIN_CHECKED / 2, `only ${r.contiguousPairs} contiguous packet pairs`);
    // Moved, not copied: each packet went one way, the WebSocket's before the channel's.
    const lastWs = Math.max(...c.packets.map((p) => p.seq));
    assert.ok(got.packets[0]!.seq > lastWs, `the WebSocket carried seq ${lastWs}, the data channel began at seq ${got.packets[0]!.seq}`);
    assert.deepEqual(c.badPackets, []);
  });

  test('the peer is the arm64 process, and the werift it loaded is the one in build/arm64/node_modules', (t) => {
    const pid = svc.proc.pid!;
    assert.equal(realpathSync(`/proc/${pid}/exe`), realpathSync(QEMU));
    assert.ok(mappedFiles(pid).has(realpathSync(ARM64_NODE)), `${ARM64_NODE} is not mapped by pid ${pid}`);
    const loaded = loadedModules(svc.stderr);
    const arm64 = realpathSync(ARM64_MODULES) + path.sep;
    const werift = loaded.filter((f) => f.includes(`${path.sep}werift${path.sep}`));
    assert.ok(werift.length > 0, `no werift file among the ${loaded.length} modules the service loaded (NODE_DEBUG=module)`);
    assert.deepEqual(werift.filter((f) => !f.startsWith(arm64 + 'werift' + path.sep)), [], `werift loaded from outside ${arm64}`);
    t.diagnostic(`${werift.length} werift files of ${loaded.length} modules loaded, the first ${werift[0]}`);
    const x86 = realpathSync(path.join(REPO_ROOT, 'node_modules')) + path.sep;
    assert.deepEqual(loaded.filter((f) => f.startsWith(x86)), [], 'the arm64 process loaded modules of the x86 node_modules');
    assert.deepEqual(svc.logs.filter((l) => (l.level ?? 0) >= 50), [], 'errors logged');
  });
});
