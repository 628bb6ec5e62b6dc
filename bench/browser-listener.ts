/**
 * A wifi listener that is the box's own listener page in headless Chromium
 * (web/listen/), as a phone's browser runs it: the page's StageboxClient, its
 * WebRTC data channel (or the WebSocket with `?transport=ws`) and the
 * library's JitterBuffer in the page's AudioWorklet. The bench-clients
 * process runs in the harness's listener namespace, so Chromium does too;
 * its traffic leaves from the namespace's first address, i.e. link l0.
 *
 * What it reports comes from the page's own read-out (window.stageboxListen,
 * the worklet's JitterBuffer stats, posted every 250 ms), read as often: the page hands over no per-packet arrival times, so there is no
 * trace, no gap classification and no capture-time view of the box.
 */
import { chromium, type Browser, type Page } from 'playwright-core';
import type { JitterBufferStats } from '../src/client/index.js';
import type { ClientSpec, WifiListenerStats } from './bench-ipc';
import { monoMs } from './library-client';
import { PacketCounters } from './packet-counters';
import { bufferQuantiles } from './wifi-listener';

const CHROMIUM = '/usr/bin/chromium';
/** The page's worklet posts its JitterBuffer stats every 250 ms; reading the page more often would only load its main thread. */
const SAMPLE_MS = 250;
/** Channels the page subscribes (raw pcm16): as many bytes a period as the library listeners' stereo mix. */
const CHANNELS = [0, 1];

interface PageStats {
  stats: { channels: number; rate: number | null; quanta: number; jitter: JitterBufferStats | null } | null;
}

let browser: Promise<Browser> | null = null;

function sharedBrowser(): Promise<Browser> {
  // --no-sandbox: the bench runs as root. Addresses, not mDNS names, in the page's ICE candidates (the box ignores
  // mDNS candidates, and the namespace has no multicast route to announce them on).
  browser ??= chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-features=WebRtcHideLocalIpsWithMdns', '--autoplay-policy=no-user-gesture-required'] });
  return browser;
}

export async function closeBrowser(): Promise<void> {
  const b = browser;
  browser = null;
  if (b) await (await b).close().catch(() => undefined);
}

export class BrowserListener extends PacketCounters {
  open = false;
  closeCode: number | null = null;
  private page: Page | null = null;
  private timer: NodeJS.Timeout | null = null;
  private last: JitterBufferStats | null = null;
  private lastQuanta = 0;
  private transport: string | null = null;
  private samples = 0;
  private rate = 48000;
  private atReset: JitterBufferStats | null = null;
  private quantaAtReset = 0;
  private win = { fromMs: monoMs(), buffer: [] as number[], targetSteps: [] as [number, number][], targetMax: 0, skipEvents: 0, lastDropped: 0 };
  private pageErrors: string[] = [];

  constructor(readonly spec: ClientSpec) {
    super();
  }

  async connect(port: number, timeoutMs: number): Promise<void> {
    const b = await sharedBrowser();
    const context = await b.newContext();
    const page = await context.newPage();
    this.page = page;
    page.on('pageerror', (err) => this.pageErrors.push(err.message));
    const deadline = Date.now() + timeoutMs;
    const until = async (what: string, check: () => Promise<boolean>): Promise<void> => {
      while (!(await check())) {
        if (Date.now() > deadline) throw new Error(`${this.spec.clientId}: ${what} not within ${timeoutMs} ms${this.pageErrors.length ? `; page errors: ${this.pageErrors.join('; ')}` : ''}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    const query = this.spec.transport === 'ws' ? '?transport=ws' : '';
    await page.goto(`http://${this.spec.host ?? '127.0.0.1'}:${port}/listen/${query}`, { timeout: timeoutMs });
    await until('the page connected', async () => (await page.getAttribute('#conn', 'data-state')) === 'live');
    await page.click('#start');
    await until('the audio engine', async () => ((await page.getAttribute('#engine', 'data-kind')) ?? '') !== '');
    await page.click('.seg label:has(#mode-channels)');
    for (const ch of CHANNELS) await page.check(`#picks input[value="${ch}"]`);
    await until(`${CHANNELS.length} channels playing`, async () => (await this.read())?.stats?.channels === CHANNELS.length);
    if (this.spec.transport !== 'ws') await until('audio over the WebRTC data channel', async () => (await page.getAttribute('#transport', 'data-kind')) === 'webrtc');
    this.open = true;
    page.on('close', () => {
      this.open = false;
    });
    this.timer = setInterval(() => void this.sample(), SAMPLE_MS);
  }

  private async read(): Promise<PageStats | null> {
    try {
      return await this.page!.evaluate(() => (globalThis as unknown as { stageboxListen: { state(): PageStats } }).stageboxListen.state());
    } catch {
      return null;
    }
  }

  private async sample(): Promise<void> {
    const page = this.page;
    if (!page) return;
    const s = await this.read();
    const j = s?.stats?.jitter;
    if (!s?.stats || !j || this.page !== page) return;
    this.rate = s.stats.rate ?? this.rate;
    this.last = j;
    this.lastQuanta = s.stats.quanta;
    if (this.samples++ % 4 === 0) this.transport = (await page.getAttribute('#transport', 'data-kind').catch(() => null)) ?? this.transport;
    const w = this.win;
    w.buffer.push((j.bufferedFrames * 1000) / this.rate);
    if (j.droppedFrames > w.lastDropped) {
      w.skipEvents++;
      w.lastDropped = j.droppedFrames;
    }
    if (w.targetSteps.length === 0 || w.targetSteps[w.targetSteps.length - 1]![1] !== j.targetMs) w.targetSteps.push([monoMs(), j.targetMs]);
    if (j.targetMs > w.targetMax) w.targetMax = j.targetMs;
  }

  override resetStats(): void {
    super.resetStats();
    this.atReset = this.last;
    this.quantaAtReset = this.lastQuanta;
    this.win = { fromMs: monoMs(), buffer: [], targetSteps: [], targetMax: this.last?.targetMs ?? 0, skipEvents: 0, lastDropped: this.last?.droppedFrames ?? 0 };
  }

  wifiStats(): WifiListenerStats {
    const j = this.last;
    const a = this.atReset;
    const d = (k: 'underruns' | 'concealedLosses' | 'concealedFrames' | 'droppedFrames' | 'late' | 'lost'): number => (j && a ? j[k] - a[k] : 0);
    const ms = (frames: number): number => (frames * 1000) / this.rate;
    return {
      label: this.spec.wifiLabel!,
      localAddress: null,
      fromMs: this.win.fromMs,
      toMs: monoMs(),
      // Render quanta played in the window: 128 frames each, as many as the 128-frame packets.
      packets: this.lastQuanta - this.quantaAtReset,
      seqGaps: d('lost'),
      underruns: d('underruns'),
      concealedLossEvents: d('concealedLosses'),
      concealedLossPackets: 0,
      concealedMs: ms(d('concealedFrames')),
      skipEvents: this.win.skipEvents,
      skippedMs: ms(d('droppedFrames')),
      late: d('late'),
      lost: d('lost'),
      bufferMs: bufferQuantiles(this.win.buffer),
      targetEndMs: j ? j.targetMs : null,
      targetMaxMs: j ? this.win.targetMax : null,
      targetSteps: this.win.targetSteps,
      trace: null,
      traceRows: 0,
      transportNow: this.transport,
      recovered: 0,
      datagrams: 0,
      spacingAtEnd: null,
      outsideLongGaps: null,
      outsideStalls: null,
      boxStalls: null,
      boxStallMaxMs: null,
    };
  }

  bufferSamples(): number[] {
    return this.win.buffer;
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    const p = this.page;
    this.page = null;
    if (p) void p.context().close().catch(() => undefined);
  }

  terminate(): void {
    this.close();
  }
}
