import { readFile, stat } from 'node:fs/promises';
import { BYTES_PER_SAMPLE } from '../engine/sample-format';
import { CaptureSource, type CaptureFormat } from './capture-source';
import { RealtimePacer } from './realtime-pacer';
import { parseWav } from './wav-file';

/** Largest WAV file loaded into memory. */
export const WAV_MAX_BYTES = 512 * 1024 * 1024;

/**
 * Streams a WAV file in real time, looping (for demos). The file's own
 * channels, format and rate are used; a bad file leaves the source in
 * state "error" with the reason, and the service keeps running.
 */
export class WavSource extends CaptureSource {
  private pacer: RealtimePacer | null = null;
  private data: Buffer = Buffer.alloc(0);
  private period: Buffer = Buffer.alloc(0);
  private pos = 0;
  private fmt: CaptureFormat | null = null;
  private stopped = false;

  constructor(
    private readonly file: string,
    private readonly periodFrames: number,
  ) {
    super('wav', `wav:${file}`);
  }

  start(): void {
    void this.open();
  }

  private async open(): Promise<void> {
    try {
      const st = await stat(this.file);
      if (st.size > WAV_MAX_BYTES) throw new RangeError(`WAV file ${this.file}: ${st.size} bytes; allowed: at most ${WAV_MAX_BYTES}`);
      const info = parseWav(await readFile(this.file), `WAV file ${this.file}`);
      if (this.stopped) return;
      this.fmt = { format: info.format, channels: info.channels, rate: info.rate, periodFrames: this.periodFrames };
      this.data = info.data;
      this.period = Buffer.alloc(this.periodFrames * info.channels * BYTES_PER_SAMPLE[info.format]);
      this.status.format = { ...this.fmt };
      this.emit('format', { ...this.fmt });
      this.setState('running', null);
      this.pacer = new RealtimePacer((this.periodFrames / info.rate) * 1000, this.tick);
      this.pacer.start();
    } catch (err) {
      this.setState('error', (err as Error).message);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.pacer?.stop();
    this.setState('stopped');
  }

  private readonly tick = (): void => {
    const want = this.period.length;
    let done = 0;
    while (done < want) {
      const n = Math.min(want - done, this.data.length - this.pos);
      this.data.copy(this.period, done, this.pos, this.pos + n);
      done += n;
      this.pos = (this.pos + n) % this.data.length;
    }
    this.emit('period', this.period, this.fmt!.periodFrames);
  };
}
