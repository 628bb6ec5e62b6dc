import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { AudioRing } from '../../src/engine/audio-ring';
import { LevelMeter, METER_FLOOR_DB } from '../../src/web/level-meter';

/** A ring of 8 slots, 3 channels, 64 frames, written the way the ingest writes it. */
function setup() {
  const ring = new AudioRing({ channels: 3, periodFrames: 64, rate: 48000, slotCount: 8 });
  let next = 0;
  const meter = new LevelMeter(() => ring, () => next);
  /** Writes one period: channel c gets a sine of peak amplitudes[c] (of full scale). */
  const write = (amplitudes: number[]): void => {
    const seq = next;
    const slot = ring.slotOf(seq);
    for (let f = 0; f < 64; f++) {
      for (let c = 0; c < 3; c++) {
        ring.samples[slot * ring.samplesPerSlot + f * 3 + c] = Math.round(Math.sin((2 * Math.PI * (seq * 64 + f)) / 64) * amplitudes[c]! * 2147483647);
      }
    }
    ring.writeHeader(slot, seq, BigInt(seq * 64), 0n, 0);
    next = (next + 1) >>> 0;
  };
  const skip = (): void => {
    next = (next + 1) >>> 0;
  };
  return { ring, meter, write, skip };
}

describe('LevelMeter', () => {
  test('collects across several calls and reports the loudest period once, at finish()', () => {
    const { meter, write } = setup();
    meter.reset();
    write([0.25, 0.25, 0.25]);
    meter.collect();
    write([1, 0.5, 0.25]);
    meter.collect();
    write([0.25, 0.25, 0.25]);
    meter.collect();
    assert.equal(meter.finish(), 3);
    assert.equal(meter.toJson(), '{"type":"levels","peakDb":[0,-6,-12]}');
    write([0.25, 0.25, 0.25]);
    meter.collect();
    meter.finish();
    assert.equal(meter.toJson(), '{"type":"levels","peakDb":[-12,-12,-12]}');
  });

  test('a full-scale negative sample reads 0 dBFS', () => {
    const { ring } = setup();
    let next = 0;
    const m = new LevelMeter(() => ring, () => next);
    m.reset();
    ring.samples[1] = -2147483648;
    ring.writeHeader(0, 0, 0n, 0n, 0);
    next = 1;
    m.collect();
    m.finish();
    assert.equal(m.toJson(), '{"type":"levels","peakDb":[-120,0,-120]}');
  });

  test('reports each channel\'s peak since the last update in dBFS', () => {
    const { meter, write } = setup();
    meter.reset();
    write([0.25, 0.5, 0]);
    write([0.25, 1.0, 0]);
    assert.equal(meter.collect(), 2);
    assert.equal(meter.finish(), 2);
    assert.equal(meter.channels, 3);
    assert.ok(Math.abs(meter.peakDb[0]! - -12.04) < 0.05, `ch0 ${meter.peakDb[0]}`);
    assert.ok(Math.abs(meter.peakDb[1]! - 0) < 0.05, `ch1 ${meter.peakDb[1]}`);
    assert.equal(meter.peakDb[2], METER_FLOOR_DB);
    assert.equal(meter.toJson(), '{"type":"levels","peakDb":[-12,0,-120]}');
    write([0.5, 0.25, 0.25]);
    meter.collect();
    meter.finish();
    assert.equal(meter.toJson(), '{"type":"levels","peakDb":[-6,-12,-12]}');
  });

  test('with no new period every channel reads null (no audio), not silence', () => {
    const { meter, write } = setup();
    meter.reset();
    write([0.25, 0.25, 0.25]);
    meter.collect();
    meter.finish();
    assert.equal(meter.collect(), 0);
    assert.equal(meter.finish(), 0);
    assert.equal(meter.toJson(), '{"type":"levels","peakDb":[null,null,null]}');
  });

  test('a period skipped by the ingest (its slot still holds an older seq) is not measured', () => {
    const { meter, write, skip } = setup();
    meter.reset();
    write([0.25, 0.25, 0.25]);
    skip();
    write([0.25, 0.25, 0.25]);
    assert.equal(meter.collect(), 2);
  });

  test('more periods than the ring holds: only the ring\'s newest slots are read', () => {
    const { meter, write } = setup();
    meter.reset();
    for (let i = 0; i < 20; i++) write([i < 12 ? 1 : 0.25, 0.25, 0.25]);
    assert.equal(meter.collect(), 8);
    meter.finish();
    assert.ok(Math.abs(meter.peakDb[0]! - -12.04) < 0.05, `older, overwritten periods are not counted: ${meter.peakDb[0]}`);
  });

  test('reset() starts from the periods written after it', () => {
    const { meter, write } = setup();
    write([1, 1, 1]);
    meter.reset();
    write([0.25, 0.25, 0.25]);
    meter.collect();
    meter.finish();
    assert.ok(meter.peakDb[0]! < -12);
  });
});
