import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { makeAlsaFixture } from '../helpers/alsa-fixture';
import { withTimeout } from '../helpers/wait';
import { AlsaSource } from '../../src/capture/alsa-source';

/**
 * unfinishedReaders() decides how the service ends after a stop: 0 →
 * process.exit(), else death by SIGTERM, because libuv joins its threadpool
 * at exit and a reader that never returns would hang it. A stop cut short by
 * the 1.8 s deadline may not have reached the capture step, so the reader
 * still open must count too (it was missed, and the process hung until
 * SIGKILL; seen under qemu, where stopping MQTT alone took over 1.8 s).
 * Real alsa-lib, in this process, on the fixture's `file` device.
 */

const fx = makeAlsaFixture({ format: 'S16_LE', channels: 2, periodFrames: 128, pcmName: 'sb_readers' });
process.env.ALSA_CONFIG_PATH = fx.env.ALSA_CONFIG_PATH;
after(() => fx.remove());

test('an open reader counts as unfinished until stop() has closed it, and none is left after', async () => {
  fx.start();
  const src = new AlsaSource({ device: fx.pcmName, format: 'S16_LE', channels: 2, rate: 48000, periodFrames: 128, retryInitialMs: 100, retryMaxMs: 1000, stallTimeoutMs: 2000 });
  assert.equal(src.unfinishedReaders(), 0, 'before start');
  src.start();
  await withTimeout(once(src, 'period'), 10000, 'a first period from the fixture');
  assert.equal(src.unfinishedReaders(), 1, 'the reader delivering periods');
  await src.stop();
  assert.equal(src.snapshot().state, 'stopped');
  assert.equal(src.unfinishedReaders(), 0, 'the fixture keeps feeding, so the closed reader returned within stop()');
});
