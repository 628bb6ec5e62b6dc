import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { EventLog } from '../../src/health/event-log';

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
