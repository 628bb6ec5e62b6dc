// The listener's sound output: an AudioContext at the box's rate with the PlaybackCore in an AudioWorklet; where
// the browser has no AudioWorklet (it needs a secure context, and http://<box> on a phone is not one) the same core
// runs in a ScriptProcessorNode on the page. The page hands it decoded packets; it reports the jitter buffer's
// numbers about four times a second.
import { PlaybackCore } from './playback-core.js';

export class AudioOutput {
  /**
   * @param {{ rate: number, captureSeconds?: number, forceScript?: boolean, onStats(s: object): void }} o
   */
  constructor(o) {
    this.o = o;
    this.ctx = null;
    this.node = null;
    this.kind = null; // 'worklet' | 'script'
    this.core = null; // only in script mode
    this.captures = new Map();
    this.nextCaptureId = 1;
  }

  get rate() {
    return this.ctx ? this.ctx.sampleRate : null;
  }

  /** Creates the context and the node; call from a user gesture on phones (autoplay rules). */
  async start() {
    const ctx = new AudioContext({ latencyHint: 'interactive', sampleRate: this.o.rate });
    this.ctx = ctx;
    const captureSeconds = this.o.captureSeconds ?? 0;
    if (ctx.audioWorklet && !this.o.forceScript) {
      await ctx.audioWorklet.addModule(new URL('listen-worklet.js', document.baseURI).href);
      const node = new AudioWorkletNode(ctx, 'stagebox-listen', {
        numberOfInputs: 0,
        numberOfOutputs: 1,
        outputChannelCount: [2],
        processorOptions: { captureSeconds },
      });
      node.port.onmessage = (e) => this.onMessage(e.data);
      node.connect(ctx.destination);
      this.node = node;
      this.kind = 'worklet';
    } else {
      // 512 frames: the smallest size that keeps up on the main thread of a phone.
      const node = ctx.createScriptProcessor(512, 0, 2);
      const core = new PlaybackCore(ctx.sampleRate, { captureSeconds });
      let nextStats = 0;
      node.onaudioprocess = (e) => {
        const l = e.outputBuffer.getChannelData(0);
        const r = e.outputBuffer.getChannelData(1);
        const now = ctx.currentTime * 1000;
        // The core works in quanta of 128, as in the worklet.
        for (let off = 0; off < l.length; off += 128) core.render(l.subarray(off, off + 128), r.subarray(off, off + 128), now + (off / ctx.sampleRate) * 1000);
        if (now >= nextStats) {
          nextStats = now + 250;
          this.o.onStats(core.stats());
        }
      };
      node.connect(ctx.destination);
      this.node = node;
      this.core = core;
      this.kind = 'script';
    }
    if (ctx.state !== 'running') await ctx.resume();
  }

  /** Hands one decoded packet to the jitter buffer; its sample buffer is transferred (the caller must not reuse it). */
  push(p) {
    if (this.kind === 'worklet') {
      this.node.port.postMessage({ type: 'audio', ...p }, [p.samples.buffer]);
    } else if (this.kind === 'script') {
      this.core.push(p, this.ctx.currentTime * 1000);
    }
  }

  /** Output latency of the audio path below the jitter buffer, ms: the context's baseLatency + outputLatency. */
  outputLatencyMs() {
    if (!this.ctx) return null;
    return ((this.ctx.baseLatency || 0) + (this.ctx.outputLatency || 0)) * 1000;
  }

  onMessage(m) {
    if (m.type === 'stats') this.o.onStats(m);
    else if (m.type === 'captured') {
      const done = this.captures.get(m.id);
      this.captures.delete(m.id);
      if (done) done(m);
    }
  }

  /** The last captured seconds of decoded audio per channel (test hook, `?capture=1`). */
  capture() {
    if (this.kind === 'script') return Promise.resolve(this.core.takeCapture());
    if (this.kind !== 'worklet') return Promise.reject(new Error('audio not started'));
    const id = this.nextCaptureId++;
    return new Promise((resolve) => {
      this.captures.set(id, resolve);
      this.node.port.postMessage({ type: 'capture', id });
    });
  }

  async close() {
    if (this.ctx) await this.ctx.close();
    this.ctx = null;
    this.kind = null;
  }
}
