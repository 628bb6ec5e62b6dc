import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DelayManager, type DelayManagerOptions } from '../../src/client/delay-manager';

/**
 * The delay manager against scripted links on an injected clock: the box sends a 128-frame packet every 2.67 ms,
 * the link delays it (1 ms, plus holds that release everything held at once), and a player pulls every 2.67 ms.
 */

const PERIOD_MS = (128 * 1000) / 48000;

interface Link {
  seconds: number;
  /** Holds as [start, length] in ms; a packet reaching the link inside one is delivered at its end. */
  holds?: [number, number][];
  /** Box clock rate over the player's, minus 1, ppm. */
  boxPpm?: number;
  opts?: Partial<DelayManagerOptions>;
  /** Called once a second with the time and the manager. */
  onSecond?: (sec: number, dm: DelayManager) => void;
}

function run(l: Link): DelayManager {
  const dm = new DelayManager({ initialMs: 10, minMs: 1, maxMs: 200, eventCostMs: 2, freeMs: 0, ...l.opts });
  const holds = l.holds ?? [];
  const endMs = l.seconds * 1000;
  const boxPeriod = PERIOD_MS / (1 + (l.boxPpm ?? 0) * 1e-6);
  let k = 0;
  let h = 0;
  let nextSecond = 1000;
  for (let now = 0.4 * PERIOD_MS; now < endMs; now += PERIOD_MS) {
    for (;;) {
      const sent = (k + 1) * boxPeriod;
      let at = sent + 1;
      while (h < holds.length && holds[h]![0] + holds[h]![1] <= at - 1) h++;
      if (h < holds.length && at >= holds[h]![0] && at < holds[h]![0] + holds[h]![1]) at = holds[h]![0] + holds[h]![1];
      if (at > now) break;
      // Box time on the box's own clock: its ms are (1 + ppm) of the player's.
      dm.arrived((k + 1) * PERIOD_MS, at, true);
      k++;
    }
    dm.observe(now, PERIOD_MS);
    if (now >= nextSecond) {
      l.onSecond?.(nextSecond / 1000, dm);
      nextSecond += 1000;
    }
  }
  return dm;
}

/** Holds of `ms` every `everyMs`, from `fromMs` to `toMs`. */
function every(everyMs: number, ms: number, fromMs = 3000, toMs = Infinity, seconds = 600): [number, number][] {
  const out: [number, number][] = [];
  for (let t = fromMs; t < Math.min(toMs, seconds * 1000); t += everyMs) out.push([t, ms]);
  return out;
}

describe('delay manager: the target', () => {
  test('packets on time: the target settles at what each pull needs (the pull, plus how long the newest packet has waited), not below', () => {
    const dm = run({ seconds: 20 });
    const need = dm.needMs;
    assert.ok(need >= PERIOD_MS && need < 2 * PERIOD_MS, `need ${need}`);
    assert.ok(dm.targetMs >= need && dm.targetMs <= need + 0.5, `target ${dm.targetMs}, need ${need}`);
  });

  test('for the first 5 s the target only rises from the initial one; then it follows the link down', () => {
    const seen: number[] = [];
    run({ seconds: 8, onSecond: (_s, dm) => seen.push(dm.targetMs) });
    assert.deepEqual(seen.slice(0, 4), [10, 10, 10, 10]);
    assert.ok(seen[6]! < 10, `after 7 s: ${seen[6]}`);
    const up: number[] = [];
    run({ seconds: 3, holds: every(200, 20, 0, Infinity, 3), onSecond: (_s, dm) => up.push(dm.targetMs) });
    assert.ok(up[1]! > 20, `with 20 ms holds, after 2 s: ${up[1]}`);
  });

  test('holds of 20 ms five times a second are covered: the target rises above 20 ms', () => {
    const dm = run({ seconds: 30, holds: every(200, 20, 3000, Infinity, 30) });
    assert.ok(dm.targetMs > 20 && dm.targetMs < 30, `target ${dm.targetMs}`);
  });

  test('a 300 ms stall twice a minute is ridden through: the target stays where the steady link put it', () => {
    const steady = run({ seconds: 120 }).targetMs;
    const seen: number[] = [];
    const rates: number[] = [];
    const dm = run({
      seconds: 120,
      holds: every(30000, 300, 10000, Infinity, 120),
      onSecond: (_s, d) => {
        seen.push(d.targetMs);
        rates.push(d.eventsPerMinAt(steady + 1));
      },
    });
    assert.equal(dm.targetMs, steady);
    assert.ok(Math.max(...seen.slice(5)) <= steady + 0.25, `the target went up to ${Math.max(...seen.slice(5))}`);
    // The stalls were seen: just after each, a target below them counts as a few events a minute.
    assert.ok(Math.max(...rates) > 1.5, `at most ${Math.max(...rates)} events/min counted`);
  });

  test('events per minute at each level match the holds: 12 holds of 30 ms a minute show as about 12/min below 30 ms and none above', () => {
    const dm = run({ seconds: 180, holds: every(5000, 30, 3000, Infinity, 180), opts: { eventCostMs: 0 } });
    const below = dm.eventsPerMinAt(15);
    assert.ok(below > 9 && below < 15, `${below} events/min at 15 ms`);
    assert.equal(dm.eventsPerMinAt(40), 0);
  });

  test('the cost per event decides: at 0 the target ignores 30 ms holds every 5 s, at 20 ms per event/min it covers them', () => {
    const cheap = run({ seconds: 120, holds: every(5000, 30, 3000, Infinity, 120), opts: { eventCostMs: 0 } });
    const dear = run({ seconds: 120, holds: every(5000, 30, 3000, Infinity, 120), opts: { eventCostMs: 20 } });
    assert.ok(cheap.targetMs < 7, `cost 0: target ${cheap.targetMs}`);
    assert.ok(dear.targetMs > 30, `cost 20: target ${dear.targetMs}`);
  });

  test('it forgets: after a minute of 20 ms holds five times a second ends, the target is back near the steady one within a minute', () => {
    const steady = run({ seconds: 20 }).targetMs;
    const seen: number[] = [];
    run({ seconds: 150, holds: every(200, 20, 3000, 60000, 150), onSecond: (_s, d) => seen.push(d.targetMs) });
    assert.ok(seen[59]! > 20, `during the holds: ${seen[59]}`);
    const end = seen[seen.length - 1]!;
    assert.ok(end <= steady + 1, `a minute and a half later: ${end}, steady ${steady}`);
  });

  test('latency up to freeMs is free: a 4.5 ms hold every 30 s, not worth covering at 1 ms per event, is covered when it stays under freeMs', () => {
    const holds = every(30000, 4.5, 3000, Infinity, 36);
    const steady = run({ seconds: 20 }).targetMs;
    const at35 = (opts: Partial<DelayManagerOptions>): number => {
      let t = NaN;
      run({ seconds: 36, holds, opts, onSecond: (sec, d) => (sec === 35 ? (t = d.targetMs) : undefined) });
      return t;
    };
    assert.equal(at35({ eventCostMs: 1 }), steady);
    const free = at35({ eventCostMs: 1, freeMs: 8 });
    assert.ok(free > steady + 4 && free <= 9, `with freeMs 8: ${free}, steady ${steady}`);
    // Nothing to save: the free latency is not taken.
    assert.equal(run({ seconds: 20, opts: { freeMs: 8 } }).targetMs, steady);
  });

  test('minMs and maxMs bound it; holds that maxMs cannot cover are not paid for at all', () => {
    assert.equal(run({ seconds: 10, opts: { minMs: 8 } }).targetMs, 8);
    const capped = run({ seconds: 30, holds: every(200, 20, 3000, Infinity, 30), opts: { maxMs: 12 } });
    // Every level up to 12 ms has the same events (all the holds), so the lowest that the link allows wins.
    assert.ok(capped.targetMs < 4, `target ${capped.targetMs}`);
    const seen: number[] = [];
    run({ seconds: 30, holds: every(200, 8, 3000, Infinity, 30), opts: { maxMs: 12 }, onSecond: (_s, d) => seen.push(d.targetMs) });
    assert.ok(Math.max(...seen) <= 12 && seen[seen.length - 1]! > 8, `targets ${seen.join(' ')}`);
  });
});

describe('delay manager: clocks', () => {
  test('a box clock 300 ppm fast: the floor follows it, so what a pull needs stays steady over 2 minutes', () => {
    const needs: number[] = [];
    run({ seconds: 120, boxPpm: 300, onSecond: (_s, d) => needs.push(d.needMs) });
    const spread = Math.max(...needs.slice(5)) - Math.min(...needs.slice(5));
    // 300 ppm is 36 ms over 2 minutes; the floor's 2 s window leaves at most 0.6 ms of it, plus the pull phase.
    assert.ok(spread < PERIOD_MS + 0.7, `need moved by ${spread} ms`);
  });

  test('restartClock forgets the floor and the newest packet until the next one', () => {
    const dm = run({ seconds: 5 });
    dm.restartClock();
    assert.ok(Number.isNaN(dm.floorMs) && Number.isNaN(dm.newestBoxEndMs));
    dm.arrived(1000, 1000.5, true);
    assert.equal(dm.floorMs, 0.5);
  });
});
