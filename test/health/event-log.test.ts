import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { EventLog } from '../../src/health/event-log';
import { OverloadWatch } from '../../src/health/overload-watch';

describe('EventLog', () => {
  test('keeps the last `capacity` events, oldest first, with growing seq', () => {
    const log = new EventLog(3);
    for (let i = 1; i <= 5; i++) log.add('client-joined', { clientId: `p${i}` });
    const recent = log.recent();
    assert.deepEqual(recent.map((e) => e.seq), [3, 4, 5]);
    assert.deepEqual(recent.map((e) => e.fields.clientId), ['p3', 'p4', 'p5']);
    assert.equal(log.lastSeq, 5);
    assert.deepEqual(log.recent(2).map((e) => e.seq), [4, 5]);
    assert.ok(recent.every((e) => e.kind === 'client-joined' && typeof e.at === 'number'));
  });

  test('an empty log has no events', () => {
    assert.deepEqual(new EventLog().recent(), []);
  });

  test('listeners hear every later event; one that throws stops neither the log nor the others', () => {
    const log = new EventLog(5);
    const heard: string[] = [];
    log.subscribe(() => {
      throw new Error('reporter down');
    });
    const stop = log.subscribe((e) => heard.push(e.kind));
    log.add('a');
    stop();
    log.add('b');
    assert.deepEqual(heard, ['a']);
    assert.equal(log.recent().length, 2);
  });

  test('a capacity below 1 is a RangeError naming the value', () => {
    assert.throws(() => new EventLog(0), { name: 'RangeError', message: 'capacity: got 0; allowed: an integer >= 1' });
  });
});

describe('OverloadWatch', () => {
  const zero = { deadlineMisses: 0, skippedPeriods: 0, xruns: 0 };

  test('a burst of misses makes one "overload" event at its start and one "overload-ended" with its totals', () => {
    const log = new EventLog();
    const w = new OverloadWatch(log, 3);
    w.check(zero, 0);
    w.check({ deadlineMisses: 4, skippedPeriods: 0, xruns: 1 }, 1000);
    w.check({ deadlineMisses: 10, skippedPeriods: 2, xruns: 1 }, 2000);
    w.check({ deadlineMisses: 10, skippedPeriods: 2, xruns: 1 }, 3000);
    w.check({ deadlineMisses: 10, skippedPeriods: 2, xruns: 1 }, 4000);
    assert.deepEqual(log.recent().map((e) => [e.kind, e.fields]), [['overload', { deadlineMisses: 4, skippedPeriods: 0, xruns: 1 }]]);
    w.check({ deadlineMisses: 10, skippedPeriods: 2, xruns: 1 }, 5000);
    assert.deepEqual(log.recent().map((e) => [e.kind, e.fields]), [
      ['overload', { deadlineMisses: 4, skippedPeriods: 0, xruns: 1 }],
      ['overload-ended', { deadlineMisses: 10, skippedPeriods: 2, xruns: 1, durationS: 4 }],
    ]);
  });

  test('the first check only sets the baseline; a perf reset (counters drop) is not a burst by itself', () => {
    const log = new EventLog();
    const w = new OverloadWatch(log);
    w.check({ deadlineMisses: 50, skippedPeriods: 0, xruns: 0 });
    w.check({ deadlineMisses: 50, skippedPeriods: 0, xruns: 0 });
    w.check(zero);
    assert.deepEqual(log.recent(), []);
    w.check({ deadlineMisses: 2, skippedPeriods: 0, xruns: 0 });
    assert.deepEqual(log.recent().map((e) => e.fields.deadlineMisses), [2]);
  });
});
