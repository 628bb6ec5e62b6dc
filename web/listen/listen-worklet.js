// AudioWorklet processor of the listener: decoded packets arrive from the page over the port (their buffers
// transferred, not copied), the PlaybackCore's jitter buffer holds them, and every 128-frame render quantum is
// pulled from it. Stats go back to the page about four times a second.
import { PlaybackCore } from './playback-core.js';

const STATS_EVERY_MS = 250;

class StageboxListenProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const o = options.processorOptions ?? {};
    this.core = new PlaybackCore(sampleRate, { captureSeconds: o.captureSeconds ?? 0 });
    this.nextStatsMs = 0;
    this.port.onmessage = (e) => this.onMessage(e.data);
  }

  nowMs() {
    return (currentFrame / sampleRate) * 1000;
  }

  onMessage(m) {
    if (m.type === 'audio') this.core.push(m, this.nowMs());
    else if (m.type === 'capture') {
      const c = this.core.takeCapture();
      this.port.postMessage({ type: 'captured', id: m.id, ...c }, c.channels.map((a) => a.buffer));
    }
  }

  process(_inputs, outputs) {
    const out = outputs[0];
    const left = out[0];
    const right = out.length > 1 ? out[1] : out[0];
    const now = this.nowMs();
    this.core.render(left, right, now);
    if (now >= this.nextStatsMs) {
      this.nextStatsMs = now + STATS_EVERY_MS;
      this.port.postMessage({ type: 'stats', ...this.core.stats() });
    }
    return true;
  }
}

registerProcessor('stagebox-listen', StageboxListenProcessor);
