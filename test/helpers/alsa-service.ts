import { makeAlsaFixture, type AlsaFixture, type FixtureFormat } from './alsa-fixture';
import { startService, type ServiceProcess } from './service-process';

const fixtures: AlsaFixture[] = [];

export interface FixtureServiceOptions {
  format: FixtureFormat;
  channels: number;
  periodFrames: number;
  pcmName: string;
  /** Raw frames to replay instead of the pattern (see makeAlsaFixture). */
  cycle?: Buffer;
  label?: string;
  /** Extra capture keys (stall and retry timings), merged over the fixture's own. */
  capture?: Record<string, unknown>;
  /** Other config sections (pool, stream …). */
  config?: Record<string, unknown>;
  /** Extra env for the service (NOTIFY_SOCKET …). */
  env?: Record<string, string>;
}

/**
 * A real-time FIFO-fed ALSA `file` device, already delivering, and the
 * service capturing from it at 48 kHz. Remove the fixtures with removeFixtures().
 */
export async function startOnFixture(o: FixtureServiceOptions): Promise<{ fx: AlsaFixture; svc: ServiceProcess }> {
  const fx = makeAlsaFixture({ format: o.format, channels: o.channels, periodFrames: o.periodFrames, pcmName: o.pcmName, ...(o.cycle ? { cycle: o.cycle } : {}) });
  fixtures.push(fx);
  fx.start();
  const svc = await startService({
    label: o.label ?? o.pcmName,
    env: { ...fx.env, ...o.env },
    config: {
      ...o.config,
      capture: { device: fx.pcmName, channels: o.channels, format: o.format, rate: 48000, periodFrames: o.periodFrames, ...o.capture },
    },
  });
  return { fx, svc };
}

/** Stops every fixture's feeder and deletes its files. */
export function removeFixtures(): void {
  for (const fx of fixtures.splice(0)) fx.remove();
}
