import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { InlineDecider } from '../../src/pool/inline-decider';

/** Runs `n` inline periods of `work` units, each measured at `msPerWork` per unit. */
function feed(d: InlineDecider, n: number, work: number, msPerWork: number, budgetMs = 1): number {
  let inline = 0;
  for (let i = 0; i < n; i++) {
    if (d.inline(work, budgetMs)) {
      inline++;
      d.learn(work * msPerWork, work);
    }
  }
  return inline;
}

describe('the send pool\'s inline-or-workers decision', () => {
  test('the first 200 periods run inline and teach it nothing (V8 has not optimised the kernels yet)', () => {
    const d = new InlineDecider();
    assert.equal(feed(d, 200, 100, 1), 200, 'even a load 100x over the budget stays inline while warming up');
    assert.equal(d.costMsPerWork, 0);
    feed(d, 1, 100, 0.001);
    assert.equal(d.costMsPerWork, 0.001, 'the first measured period sets the cost');
  });

  test('a load that fits the budget stays inline; one that does not goes to the workers', () => {
    const d = new InlineDecider();
    feed(d, 201, 10, 0.05); // 0.5 ms of a 1 ms budget
    assert.equal(d.inline(10, 1), true);
    assert.equal(d.inline(30, 1), false, '1.5 ms predicted, 1 ms allowed');
  });

  test('back from the workers only below 70% of the budget, so a load near the budget does not flip every period', () => {
    const d = new InlineDecider();
    feed(d, 201, 10, 0.1); // cost 0.1 ms per unit
    assert.equal(d.inline(11, 1), false, '1.1 ms: pooled');
    assert.equal(d.inline(9, 1), false, '0.9 ms fits the budget but not 70% of it: stays pooled');
    assert.equal(d.inline(6, 1), true, '0.6 ms: back inline');
    assert.equal(d.inline(9, 1), true, 'inline again, so 0.9 ms is judged against the whole budget');
  });

  test('while pooled, one period in 256 runs inline to re-measure, and a cheaper measurement brings the load back', () => {
    const d = new InlineDecider();
    feed(d, 201, 10, 0.2); // 2 ms for 10 units: pooled
    /** Pooled periods until the next probe (the one that runs inline), counting the probe. */
    const untilProbe = (): number => {
      for (let i = 1; i <= 256; i++) if (d.inline(10, 1)) return i;
      return -1;
    };
    assert.equal(untilProbe(), 256, 'the probe is the 256th pooled period');
    // Each probe measures the load cheap now (a slow period had banished it); a probe weighs 30%, so 4 bring it under 70%.
    d.learn(10 * 0.01, 10);
    for (let probe = 2; probe <= 4; probe++) {
      assert.equal(untilProbe(), 256, `probe ${probe}`);
      d.learn(10 * 0.01, 10);
    }
    assert.ok(d.costMsPerWork < 0.07, `cost ${d.costMsPerWork}`);
    assert.equal(d.inline(10, 1), true, 'inline again');
  });

  test('work of 0 teaches nothing', () => {
    const d = new InlineDecider();
    feed(d, 201, 10, 0.01);
    const before = d.costMsPerWork;
    d.learn(5, 0);
    assert.equal(d.costMsPerWork, before);
  });
});
