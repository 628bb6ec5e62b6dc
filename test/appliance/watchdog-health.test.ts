import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { audioPathHealth, healthLimits, type AudioPathSample } from '../../src/appliance/watchdog';

/** What counts as a healthy audio path for the systemd watchdog (pure rule; the protocol is tested in sd-notify.test). */

const limits = healthLimits({ stallTimeoutMs: 2000, retryMaxMs: 10000 });
const base: AudioPathSample = { now: 100000, state: 'running', stateChangedAt: 50000, lastDispatchAt: 99990, lastAttemptAt: 40000, retryBlocked: false, stuckReaders: 0 };
const check = (over: Partial<AudioPathSample>) => audioPathHealth({ ...base, ...over }, limits);

describe('audio path health', () => {
  test('limits come from the capture config: stall + 1 s between periods, retryMax + stall + 1 s between attempts', () => {
    assert.deepEqual(limits, { periodGapMs: 3000, attemptGapMs: 13000 });
  });
  test('running with a period just dispatched is healthy', () => {
    assert.equal(check({}).healthy, true);
  });
  test('running but no period for longer than the limit is unhealthy and says for how long', () => {
    assert.deepEqual(check({ lastDispatchAt: 96000 }), { healthy: false, reason: 'capture running but no period reached the send pool for 4000 ms (limit 3000 ms)' });
  });
  test('a source that just started running has until the limit for its first period', () => {
    assert.equal(check({ lastDispatchAt: 0, stateChangedAt: 99000 }).healthy, true);
  });
  test('waiting for a device with recent attempts is healthy: a restart cannot plug it in', () => {
    assert.deepEqual(check({ state: 'no-device', stateChangedAt: 90000, lastAttemptAt: 95000 }), { healthy: true, reason: 'capture no-device: retry loop alive' });
  });
  test('waiting for a device with no attempt for longer than the limit is unhealthy (the retry timer died)', () => {
    assert.equal(check({ state: 'no-device', stateChangedAt: 80000, lastAttemptAt: 80000 }).healthy, false);
  });
  test('a source blocked on reader threads stuck in the driver is unhealthy however recent its last attempt', () => {
    assert.deepEqual(check({ state: 'error', stateChangedAt: 99999, lastAttemptAt: 99999, retryBlocked: true, stuckReaders: 4 }), {
      healthy: false,
      reason: 'capture error: 4 reader thread(s) stuck in the ALSA driver; the source stopped retrying',
    });
  });
  test('a source in error that never retries (a WAV file that failed) turns unhealthy after the attempt limit', () => {
    assert.equal(check({ state: 'error', stateChangedAt: 90000, lastAttemptAt: 0 }).healthy, true);
    assert.equal(check({ state: 'error', stateChangedAt: 80000, lastAttemptAt: 0 }).healthy, false);
  });
  test('a stopped source is unhealthy', () => {
    assert.equal(check({ state: 'stopped' }).healthy, false);
  });
});
