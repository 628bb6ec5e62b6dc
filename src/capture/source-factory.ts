import type { CaptureConfig } from '../config/config-schema';
import type { SampleFormat } from '../engine/sample-format';
import { ConfigError } from '../config/config-errors';
import { AlsaSource } from './alsa-source';
import type { CaptureSource } from './capture-source';
import { listCaptureCards, pickUsbCaptureCard, type CaptureCard } from './device-probe';
import { TestSignalSource } from './test-signal-source';
import { WavSource } from './wav-source';

/** Channels of the test signal when capture.channels is "auto". */
export const TEST_SIGNAL_DEFAULT_CHANNELS = 32;

export interface SourceChoice {
  source: CaptureSource;
  /** One plain sentence for the log: what is streamed and why. */
  reason: string;
}

function cardFor(device: string, root?: string): CaptureCard | undefined {
  const m = /^(?:plug)?hw:(?:CARD=)?([^,]+)/.exec(device);
  if (!m) return undefined;
  const key = m[1]!;
  return listCaptureCards(root).find((c) => c.id === key || String(c.index) === key);
}

/**
 * Resolves capture.device / wavFile / "auto" values into one source, once at
 * start. `procRoot` is /proc/asound unless a test points elsewhere.
 */
export function createSource(cfg: CaptureConfig, procRoot?: string): SourceChoice {
  if (cfg.wavFile !== null) {
    return { source: new WavSource(cfg.wavFile, cfg.periodFrames), reason: `streaming WAV file ${cfg.wavFile} (looped, real-time paced)` };
  }
  const testSignal = (why: string): SourceChoice => {
    const ch = cfg.channels === 'auto' ? TEST_SIGNAL_DEFAULT_CHANNELS : cfg.channels;
    return { source: new TestSignalSource(ch, cfg.rate, cfg.periodFrames), reason: `${why}: streaming the built-in test signal (${ch} channels, a distinct tone on each)` };
  };
  if (cfg.device === 'test-signal') return testSignal('capture.device is "test-signal"');
  let device = cfg.device;
  let card: CaptureCard | undefined;
  if (device === 'auto') {
    const usb = pickUsbCaptureCard(procRoot);
    if (!usb) return testSignal('no USB audio interface with capture channels found in /proc/asound');
    card = usb;
    device = usb.pcm;
  } else {
    card = cardFor(device, procRoot);
  }
  let channels: number;
  if (cfg.channels !== 'auto') channels = cfg.channels;
  else if (card && card.channels > 0) channels = card.channels;
  else {
    throw new ConfigError(
      `config: capture.channels: got "auto"; allowed: a number 1-64 when capture.device is ${JSON.stringify(cfg.device)} (its channel count cannot be read from /proc/asound)`,
    );
  }
  let format: SampleFormat;
  if (cfg.format !== 'auto') format = cfg.format;
  else if (card && card.formats.length > 0) format = card.formats[0]!;
  else {
    throw new ConfigError(
      `config: capture.format: got "auto"; allowed: one of "S16_LE", "S24_3LE", "S32_LE", "FLOAT_LE" when capture.device is ${JSON.stringify(cfg.device)} (its format cannot be read from /proc/asound)`,
    );
  }
  const source = new AlsaSource({
    device,
    format,
    channels,
    rate: cfg.rate,
    periodFrames: cfg.periodFrames,
    retryInitialMs: cfg.retryInitialMs,
    retryMaxMs: cfg.retryMaxMs,
    stallTimeoutMs: cfg.stallTimeoutMs,
  });
  const what = card ? `${card.usb ? 'USB interface' : 'card'} ${card.id}` : 'ALSA device';
  return { source, reason: `capturing from ${what} ${device}: ${channels} channels, ${format}, ${cfg.rate} Hz, ${cfg.periodFrames}-frame periods` };
}
