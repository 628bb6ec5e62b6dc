import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import jsQR from 'jsqr';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { keepOnTheBox, launchChromium, newPageLog, watchPage } from '../helpers/chromium';
import { toneBytes, type Tone } from '../helpers/alsa-fixture';
import { removeFixtures, startOnFixture } from '../helpers/alsa-service';
import { getStatus } from '../helpers/http-client';
import { REPO_ROOT, stopAllServices, type ServiceProcess } from '../helpers/service-process';
import { StreamClient } from '../helpers/stream-client';
import { waitFor } from '../helpers/wait';

/**
 * The browser listener in a real headless Chromium (Debian's, through
 * playwright-core) against the real service capturing from real alsa-lib
 * (the `file` plugin fed a sine per channel at real-time pace). The page's
 * `?capture=1` hook hands back the last 2 s of what its jitter buffer
 * played, per channel; each channel's frequency and level are measured
 * here: channel mode (pcm16), the box's mix (pcm16, then Opus through
 * WebCodecs and through the WebAssembly decoder), and the ScriptProcessor
 * fallback. Audio plays into Chromium's headless output, which pulls in
 * real time like a sound card.
 */

const OUTPUT_DIR = path.join(REPO_ROOT, 'test-output');
/** The fixture's sine per channel: distinct frequencies and levels, so a swapped or mis-scaled channel shows. */
const TONES: readonly Tone[] = [
  { hz: 440, peakDb: -12 },
  { hz: 1000, peakDb: -18 },
  { hz: 2500, peakDb: -9 },
  { hz: 300, peakDb: -24 },
];
/** A sine's RMS is its peak less 3.01 dB. */
const SINE_RMS_DB = -3.0103;

let svc: ServiceProcess;
let browser: Browser;
let context: BrowserContext;
let page: Page;
const log = newPageLog();
const { foreign, pageErrors } = log;

before(async () => {
  ({ svc } = await startOnFixture({
    format: 'S32_LE',
    channels: TONES.length,
    periodFrames: 128,
    pcmName: 'sblisten',
    cycle: toneBytes('S32_LE', TONES),
    label: 'listen-browser',
  }));
  // The autoplay flag lets the AudioContext run without a real tap.
  browser = await launchChromium(['--autoplay-policy=no-user-gesture-required']);
  context = await browser.newContext({ viewport: { width: 360, height: 800 }, deviceScaleFactor: 1, hasTouch: true, isMobile: true });
  await keepOnTheBox(context, log);
  page = await context.newPage();
  watchPage(page, log);
});

after(async () => {
  await browser?.close();
  await stopAllServices();
  removeFixtures();
});

interface PageState {
  clientId: string;
  mode: string;
  codec: string;
  decoder: string | null;
  output: string | null;
  /** The playback core's last report: `quanta` counts the 128-frame render quanta it has played since the audio started. */
  stats: { channels: number; mixed: boolean; rate: number | null; quanta: number; jitter: { latencyMs: number; underruns: number } | null } | null;
  mix: { channels: { ch: number; gainDb: number | null; pan: number }[] };
  picked: number[];
  answeredAt: number;
  /** The library's connection state. */
  connection: string | null;
  now: number;
}

/** The page's own view of itself (window.stageboxListen, see web/listen/listen.js). */
function pageState(p: Page = page): Promise<PageState> {
  return p.evaluate(() => (globalThis as unknown as { stageboxListen: { state(): PageState } }).stageboxListen.state());
}

/** Opens the listener with `query`, waits for the box, taps Start and waits for the audio engine. */
async function openListener(p: Page, query: string): Promise<void> {
  await p.goto(`http://127.0.0.1:${svc.port}/listen/?capture=1${query ? '&' + query : ''}`);
  await waitFor(async () => (await p.getAttribute('#conn', 'data-state')) === 'live', { timeoutMs: 10000, what: 'the listener to connect' });
  await p.tap('#start');
  await waitFor(async () => ((await p.getAttribute('#engine', 'data-kind')) ?? '') !== '', { timeoutMs: 10000, what: 'the audio engine to start' });
}

/**
 * Waits until the box has answered the last change and the page has played
 * `layout` (channels, mixed) for well over the 2 s it keeps, then returns
 * what it played per channel. "Played" is counted in the page's own render
 * quanta, so a slow machine waits longer rather than capturing too early.
 */
async function playedAudio(layout: { channels: number; mixed: boolean }, since: number): Promise<{ rate: number; channels: number[][] }> {
  let last: PageState | null = null;
  const answered = await waitFor(
    async () => {
      last = await pageState();
      const s = last.stats;
      return last.answeredAt > since && s !== null && s.channels === layout.channels && s.mixed === layout.mixed ? s : false;
    },
    { timeoutMs: 10000, what: `the box's answer and ${layout.channels}-channel ${layout.mixed ? 'mix' : 'raw'} audio`, describe: () => JSON.stringify(last) },
  );
  // The new layout is playing (its jitter buffer, and with it the capture, started afresh at most at `answered`);
  // the change reaches the ear some packets later, then 2 s of the new audio fill the capture: 3 s played in all.
  const quanta = answered.quanta + Math.ceil((3 * (answered.rate ?? 48000)) / 128);
  await waitFor(
    async () => {
      last = await pageState();
      return (last.stats?.quanta ?? 0) >= quanta;
    },
    { timeoutMs: 15000, what: `3 s of the new audio played (render quantum ${quanta})`, describe: () => JSON.stringify(last?.stats) },
  );
  return page.evaluate(async () => {
    const c = await (globalThis as unknown as { stageboxListen: { capture(): Promise<{ rate: number; channels: Float32Array[] }> } }).stageboxListen.capture();
    return { rate: c.rate, channels: c.channels.map((a) => Array.from(a)) };
  });
}

interface Measured {
  hz: number;
  rmsDb: number;
}

/**
 * Frequency from the median interval between positive-going zero crossings
 * (interpolated), level as the median RMS of 10 ms blocks, both over the
 * last 1.5 s: a concealed gap, if any, is an outlier interval or block, not
 * a shift of the result.
 */
function measure(x: readonly number[], rate: number): Measured {
  const start = Math.max(0, x.length - Math.round(1.5 * rate));
  const intervals: number[] = [];
  let prev = -1;
  for (let i = start + 1; i < x.length; i++) {
    if (x[i - 1]! < 0 && x[i]! >= 0) {
      const t = i - 1 + x[i - 1]! / (x[i - 1]! - x[i]!);
      if (prev >= 0) intervals.push(t - prev);
      prev = t;
    }
  }
  const block = Math.round(rate / 100);
  const rms: number[] = [];
  for (let b = start; b + block <= x.length; b += block) {
    let s = 0;
    for (let i = b; i < b + block; i++) s += x[i]! * x[i]!;
    rms.push(Math.sqrt(s / block));
  }
  const median = (a: number[]): number => a.sort((p, q) => p - q)[Math.floor(a.length / 2)] ?? 0;
  const period = median(intervals);
  return { hz: period > 0 ? rate / period : 0, rmsDb: 20 * Math.log10(median(rms) || 1e-12) };
}

function assertTone(got: Measured, want: Tone, what: string, levelTolDb: number): void {
  const wantRms = want.peakDb + SINE_RMS_DB;
  assert.ok(Math.abs(got.hz - want.hz) <= want.hz * 0.01, `${what}: ${got.hz.toFixed(1)} Hz, expected ${want.hz} Hz ±1%`);
  assert.ok(Math.abs(got.rmsDb - wantRms) <= levelTolDb, `${what}: RMS ${got.rmsDb.toFixed(2)} dBFS, expected ${wantRms.toFixed(2)} ±${levelTolDb} dB`);
}

/** Sets a strip's fader (dB, null = off) and pan through the page's own controls, as a finger would. */
async function setStrip(ch: number, gainDb: number | null, pan: number): Promise<void> {
  await page.$eval(
    `.strip[data-ch="${ch}"]`,
    (el, v) => {
      const strip = el as unknown as { querySelector(s: string): { value: string; dispatchEvent(e: unknown): void } };
      const E = (globalThis as unknown as { Event: new (t: string, o: unknown) => unknown }).Event;
      const g = strip.querySelector('.gain input');
      g.value = String(v.gainDb === null ? -60 : v.gainDb);
      g.dispatchEvent(new E('input', { bubbles: true }));
      const p = strip.querySelector('.pan input');
      p.value = String(v.pan);
      p.dispatchEvent(new E('input', { bubbles: true }));
    },
    { gainDb, pan },
  );
}

/** The mix every mix check uses: channel 0 hard left, channel 2 hard right, both at unity; the others off. */
async function setLeftRightMix(): Promise<void> {
  await setStrip(0, 0, -1);
  await setStrip(1, null, 0);
  await setStrip(2, 0, 1);
  await setStrip(3, null, 0);
}

async function chooseCodec(codec: string): Promise<void> {
  await page.selectOption('#codec', codec);
}

/** Constant-power pan: hard left is unity on the left, so L is channel 0 and R channel 2 exactly. */
function assertLeftRight(audio: { rate: number; channels: number[][] }, what: string, tolDb: number): void {
  assert.equal(audio.channels.length, 2, `${what}: two output channels`);
  assertTone(measure(audio.channels[0]!, audio.rate), TONES[0]!, `${what}, left (channel 1)`, tolDb);
  assertTone(measure(audio.channels[1]!, audio.rate), TONES[2]!, `${what}, right (channel 3)`, tolDb);
}

describe('listener in Chromium on the real ALSA path', () => {
  test('channel mode, pcm16: each picked channel plays its own tone at its own level, through the AudioWorklet', async () => {
    await openListener(page, '');
    const st = await pageState();
    assert.equal(st.output, 'worklet');
    assert.match(st.clientId, /^web-[0-9a-f]{16}$/);
    const t0 = st.now;
    await page.tap('.seg label:has(#mode-channels)');
    for (let ch = 0; ch < TONES.length; ch++) await page.check(`#picks input[value="${ch}"]`);
    await waitFor(async () => (await pageState()).picked.length === TONES.length, { timeoutMs: 5000, what: 'all four channels subscribed' });
    const audio = await playedAudio({ channels: 4, mixed: false }, t0);
    assert.equal(audio.rate, 48000);
    // The audio came over the page's WebRTC data channel (the box offers it; the page prefers it to the WebSocket).
    assert.equal(await page.getAttribute('#transport', 'data-kind'), 'webrtc');
    assert.equal(await page.textContent('#transport'), 'WebRTC data channel');
    const me = (await getStatus(svc.port)).clients.find((c) => c.clientId === st.clientId) as unknown as { transport: { now: string; datagrams: number } };
    assert.equal(me.transport.now, 'webrtc');
    assert.ok(me.transport.datagrams > 48000 / 128, `${me.transport.datagrams} datagrams`);
    for (let ch = 0; ch < TONES.length; ch++) assertTone(measure(audio.channels[ch]!, audio.rate), TONES[ch]!, `channel ${ch + 1}`, 0.3);
  });

  test('the box mix, pcm16: faders and pan moved on the page put channel 1 left and channel 3 right', async () => {
    const t0 = (await pageState()).now;
    await page.tap('.seg label:has(#mode-mix)');
    await chooseCodec('pcm16');
    await setLeftRightMix();
    const audio = await playedAudio({ channels: 2, mixed: true }, t0);
    assertLeftRight(audio, 'pcm16 mix', 0.3);
  });

  test('the latency read-out shows jitter buffer plus output latency, and the page reports its buffer to the box', async () => {
    const ms = await waitFor(async () => Number((await page.getAttribute('#latency', 'data-ms')) || NaN) || false, { timeoutMs: 5000, what: 'a latency value' });
    assert.ok(ms > 0 && ms < 1000, `latency ${ms} ms`);
    assert.match((await page.textContent('#latency')) ?? '', /^\d+\.\d ms$/);
    assert.match((await page.getAttribute('#latency', 'title')) ?? '', /^jitter buffer \d+\.\d ms \+ audio output \d+\.\d ms \(AudioContext baseLatency \+ outputLatency\)$/);
    assert.match((await page.textContent('#underruns')) ?? '', /^\d+$/);
    const id = (await pageState()).clientId;
    const shown = await waitFor(
      async () => {
        const c = (await getStatus(svc.port)).clients.find((x) => x.clientId === id);
        return c && c.playbackBufferMs !== null ? c : false;
      },
      { timeoutMs: 5000, what: `the box to show ${id}'s playback buffer` },
    );
    assert.ok(shown.playbackBufferMs! > 0, `playbackBufferMs ${shown.playbackBufferMs}`);
  });

  test('the box mix in Opus, decoded by WebCodecs: the same tones on the same sides', async () => {
    const t0 = (await pageState()).now;
    await chooseCodec('opus');
    await waitFor(async () => (await pageState()).codec === 'opus' && (await pageState()).answeredAt > t0, { timeoutMs: 5000, what: 'the opus mix confirmed' });
    const audio = await playedAudio({ channels: 2, mixed: true }, t0);
    assert.equal((await pageState()).decoder, 'webcodecs');
    assert.equal(await page.getAttribute('#decoder', 'data-kind'), 'webcodecs');
    assertLeftRight(audio, 'opus mix (WebCodecs)', 0.5);
  });

  test('a reload keeps the client id and the box gives the mix back; Opus through the WebAssembly decoder', async () => {
    const before = await pageState();
    await openListener(page, 'decoder=wasm');
    const st = await waitFor(
      async () => {
        const s = await pageState();
        return s.answeredAt > 0 && s.mode === 'mix' ? s : false;
      },
      { timeoutMs: 5000, what: 'the restored mix' },
    );
    assert.equal(st.clientId, before.clientId);
    assert.equal(await page.textContent('#client-id'), before.clientId);
    assert.equal(st.codec, 'opus');
    assert.deepEqual(
      st.mix.channels.map((c) => [c.ch, c.gainDb, c.pan]),
      [
        [0, 0, -1],
        [1, null, 0],
        [2, 0, 1],
        [3, null, 0],
      ],
    );
    assert.equal(await page.$eval('.strip[data-ch="2"] .gain .val', (e) => e.textContent), '0.0 dB');
    assert.equal(await page.$eval('.strip[data-ch="2"] .pan .val', (e) => e.textContent), 'R100');
    const audio = await playedAudio({ channels: 2, mixed: true }, 0);
    assert.equal((await pageState()).decoder, 'wasm');
    assert.equal(await page.getAttribute('#decoder', 'data-kind'), 'wasm');
    assertLeftRight(audio, 'opus mix (WebAssembly)', 0.5);
    const ids = (await getStatus(svc.port)).clients.map((c) => c.clientId).filter((c) => c === before.clientId);
    assert.deepEqual(ids, [before.clientId], 'one connection per client id: the reload replaced the old one');
  });

  test('without an AudioWorklet (plain http on a phone) the ScriptProcessor fallback plays the same mix; ?transport=ws keeps it on the WebSocket', async () => {
    await openListener(page, 'output=script&transport=ws');
    assert.equal(await page.getAttribute('#engine', 'data-kind'), 'script');
    const t0 = (await pageState()).now;
    await chooseCodec('pcm16');
    const audio = await playedAudio({ channels: 2, mixed: true }, t0);
    assertLeftRight(audio, 'pcm16 mix (ScriptProcessor)', 0.3);
    assert.equal(await page.getAttribute('#transport', 'data-kind'), 'ws');
    const id = (await pageState()).clientId;
    const me = (await getStatus(svc.port)).clients.find((c) => c.clientId === id) as unknown as { transport: { now: string; asked: string } };
    assert.deepEqual([me.transport.now, me.transport.asked], ['ws', 'ws'], 'the page never asked for the data channel');
  });

  test('it fits a 360 px phone screen, and the screenshot is saved', async (t) => {
    const widths = await page.evaluate(() => {
      const d = (globalThis as unknown as { document: { documentElement: { scrollWidth: number; clientWidth: number } } }).document;
      return { scroll: d.documentElement.scrollWidth, client: d.documentElement.clientWidth };
    });
    assert.ok(widths.scroll <= widths.client, `page is ${widths.scroll} px wide in a ${widths.client} px screen`);
    const small = await page.$$eval('button, .seg span, .strip input, .pick', (els) =>
      els
        .map((e) => (e as unknown as { getBoundingClientRect(): { height: number } }).getBoundingClientRect().height)
        .filter((h) => h > 0 && h < 40),
    );
    assert.deepEqual(small, [], 'every touch target is at least 40 px tall');
    mkdirSync(OUTPUT_DIR, { recursive: true });
    const shot = path.join(OUTPUT_DIR, 'listen.png');
    await page.screenshot({ path: shot, fullPage: true });
    t.diagnostic(`screenshot: ${shot}`);
  });

  test('another tab with the same listener id takes over (close 4010): the page says so and does not reconnect', async () => {
    const id = (await pageState()).clientId;
    const other = await StreamClient.open(svc.port, id, { keepPackets: false });
    try {
      await waitFor(async () => (await page.getAttribute('#conn', 'data-state')) === 'offline', { timeoutMs: 5000, what: 'the page to go offline' });
      assert.equal(await page.textContent('#conn'), 'opened elsewhere');
      assert.match((await page.textContent('#error')) ?? '', /opened on another tab or device with the same id; reload to take it back/);
      // The page shows "opened elsewhere" only for a close the library will not retry (its state event has
      // retryInMs null: no reconnect timer exists; stagebox-client.test.ts runs out every timer to prove it), and
      // only the library reconnects (the page connects once, at load). So nothing needs to be waited for here.
      assert.equal((await pageState()).connection, 'closed');
      assert.equal(other.closeInfo, null, 'the other connection keeps the id');
      assert.equal((await getStatus(svc.port)).clients.filter((c) => c.clientId === id).length, 1);
    } finally {
      other.ws.close();
    }
  });

  test('the dashboard shows a QR code that decodes to the listener on this box', async () => {
    const dash = await context.newPage();
    watchPage(dash, log);
    await dash.setViewportSize({ width: 412, height: 915 });
    await dash.goto(`http://127.0.0.1:${svc.port}/`);
    const url = `http://127.0.0.1:${svc.port}/listen/`;
    await waitFor(async () => (await dash.getAttribute('#listen-qr', 'data-url')) === url, { timeoutMs: 5000, what: 'the QR code with the listener URL' });
    assert.equal(await dash.textContent('#listen-link'), url);
    // The SVG as the browser drew it, read back from a canvas and decoded here.
    const img = await dash.evaluate(async () => {
      const g = globalThis as unknown as {
        document: { getElementById(id: string): unknown; createElement(t: 'canvas'): { width: number; height: number; getContext(c: '2d'): { fillStyle: string; fillRect(...a: number[]): void; drawImage(...a: unknown[]): void; getImageData(...a: number[]): { data: Uint8ClampedArray } } } };
      };
      const el = g.document.getElementById('listen-qr') as { complete: boolean; decode(): Promise<void> };
      await el.decode();
      const c = g.document.createElement('canvas');
      c.width = c.height = 400;
      const ctx = c.getContext('2d');
      ctx.fillStyle = '#fff';
      ctx.fillRect(0, 0, 400, 400);
      ctx.drawImage(el, 0, 0, 400, 400);
      return Array.from(ctx.getImageData(0, 0, 400, 400).data);
    });
    const code = jsQR(Uint8ClampedArray.from(img), 400, 400);
    assert.ok(code !== null, 'the QR code decodes');
    assert.equal(code.data, url);
    mkdirSync(OUTPUT_DIR, { recursive: true });
    await dash.screenshot({ path: path.join(OUTPUT_DIR, 'dashboard-listen-qr.png'), fullPage: true });
    await dash.close();
  });

  test('everything came from the box, and no page raised an error', () => {
    assert.deepEqual(foreign, [], `requests off the box: ${foreign.join(', ')}`);
    assert.deepEqual(pageErrors, []);
  });
});
