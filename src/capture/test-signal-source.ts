import { CaptureSource, type CaptureFormat } from './capture-source';
import { RealtimePacer } from './realtime-pacer';

/** Table length in frames: every tone completes whole cycles in it, so it loops seamlessly. */
export const TEST_SIGNAL_TABLE_FRAMES = 4096;
/** Peak level of each tone: -12 dBFS. */
export const TEST_SIGNAL_AMPLITUDE = 0.25;

/** FFT bin (of TEST_SIGNAL_TABLE_FRAMES) of channel `ch`'s tone: distinct per channel. */
export function testToneBin(ch: number): number {
  return 8 + 3 * ch;
}

/** Frequency in Hz of channel `ch`'s tone at `rate`. */
export function testToneHz(ch: number, rate: number): number {
  return (testToneBin(ch) * rate) / TEST_SIGNAL_TABLE_FRAMES;
}

/**
 * Built-in test signal: every channel a distinct sine (channel 0 at 93.75 Hz
 * @ 48 kHz, each next one 3 bins higher), S32_LE, paced in real time.
 * Streams when there is no sound card, so the box always has something to send.
 */
export class TestSignalSource extends CaptureSource {
  private readonly table: Buffer;
  private readonly period: Buffer;
  private pos = 0;
  private readonly pacer: RealtimePacer;
  private readonly fmt: CaptureFormat;

  constructor(channels: number, rate: number, periodFrames: number) {
    super('test-signal', 'test-signal');
    this.fmt = { format: 'S32_LE', channels, rate, periodFrames };
    const t = new Int32Array(TEST_SIGNAL_TABLE_FRAMES * channels);
    for (let f = 0; f < TEST_SIGNAL_TABLE_FRAMES; f++) {
      for (let c = 0; c < channels; c++) {
        const phase = (2 * Math.PI * testToneBin(c) * f) / TEST_SIGNAL_TABLE_FRAMES;
        t[f * channels + c] = Math.round(Math.sin(phase) * TEST_SIGNAL_AMPLITUDE * 2147483647);
      }
    }
    this.table = Buffer.from(t.buffer);
    this.period = Buffer.alloc(periodFrames * channels * 4);
    this.pacer = new RealtimePacer((periodFrames / rate) * 1000, this.tick);
  }

  start(): void {
    this.status.format = { ...this.fmt };
    this.emit('format', { ...this.fmt });
    this.setState('running', null);
    this.pacer.start();
  }

  async stop(): Promise<void> {
    this.pacer.stop();
    this.setState('stopped');
  }

  private readonly tick = (): void => {
    const frameBytes = this.fmt.channels * 4;
    let done = 0;
    const frames = this.fmt.periodFrames;
    while (done < frames) {
      const n = Math.min(frames - done, TEST_SIGNAL_TABLE_FRAMES - this.pos);
      this.table.copy(this.period, done * frameBytes, this.pos * frameBytes, (this.pos + n) * frameBytes);
      done += n;
      this.pos = (this.pos + n) % TEST_SIGNAL_TABLE_FRAMES;
    }
    this.emit('period', this.period, frames);
  };
}
