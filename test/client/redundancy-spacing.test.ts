import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { SPACING_WINDOW_MS, SpacingChooser, clampSpacing } from '../../src/client/redundancy-spacing';

/** Feeds `bursts` (lengths) 100 ms apart from `t0`; returns the time after the last. */
function feed(c: SpacingChooser, bursts: number[], t0 = 0): number {
  let t = t0;
  for (const b of bursts) {
    c.noteBurst(b, t);
    t += 100;
  }
  return t;
}

describe('SpacingChooser', () => {
  test('single losses keep spacing 1', () => {
    const c = new SpacingChooser();
    const t = feed(c, [1, 1, 1, 1, 1, 1]);
    assert.equal(c.choose(t, 10), 1);
    assert.equal(c.look(t, 10), null);
    assert.equal(c.spacing, 1);
  });

  test('bursts of four call for spacing 4, asked for only once the choice held for two looks', () => {
    const c = new SpacingChooser();
    const t = feed(c, [4, 4, 4, 4]);
    assert.equal(c.choose(t, 10), 4);
    assert.equal(c.look(t, 10), null, 'the first look only notes it');
    assert.equal(c.look(t + 1000, 10), 4);
    assert.equal(c.spacing, 4);
    assert.equal(c.look(t + 2000, 10), null, 'nothing new to ask');
  });

  test('the spacing covers 90% of the lost packets, not the longest burst seen', () => {
    const c = new SpacingChooser();
    // 20 packets lost in bursts of 2, one burst of 8: 2 covers 20 of 28 (71%), so more is needed...
    feed(c, [2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 8]);
    assert.equal(c.choose(1100, null), 8);
    // ...but with 80 lost in bursts of 2, the one burst of 8 is under 10%.
    const d = new SpacingChooser();
    feed(d, [...Array<number>(40).fill(2), 8]);
    assert.equal(d.choose(4100, null), 2);
  });

  test('never longer than one period more than the buffer holds', () => {
    const c = new SpacingChooser();
    const t = feed(c, [6, 6, 6, 6]);
    assert.equal(c.choose(t, 2.5), 3);
    assert.equal(c.choose(t, 0.5), 1);
    assert.equal(c.choose(t, null), 6, 'without a buffer to respect, the bursts alone decide');
  });

  test('fewer than three bursts, or only old ones, say nothing: the spacing stays', () => {
    const c = new SpacingChooser(2);
    feed(c, [5, 5]);
    assert.equal(c.choose(300, null), 2);
    const old = new SpacingChooser(2);
    feed(old, [5, 5, 5, 5]);
    assert.equal(old.choose(400 + SPACING_WINDOW_MS, null), 2);
  });

  test('a change of room brings it back down once the old bursts leave the window', () => {
    const c = new SpacingChooser();
    let t = feed(c, [4, 4, 4, 4]);
    c.look(t, null);
    assert.equal(c.look(t, null), 4);
    t = feed(c, [1, 1, 1, 1], t + SPACING_WINDOW_MS);
    c.look(t, null);
    assert.equal(c.look(t, null), 1);
  });

  test('a flapping choice is not asked for', () => {
    const c = new SpacingChooser();
    feed(c, [3, 3, 3]);
    assert.equal(c.look(300, null), null);
    assert.equal(c.look(300, 0.5), null, 'the buffer shrank: back to 1, the current one');
    assert.equal(c.look(300, null), null, 'wants 3 again: its count starts over');
    assert.equal(c.spacing, 1);
  });

  test('odd input is ignored or clamped: a burst of 0 or NaN is no burst, spacings stay in 1-8', () => {
    const c = new SpacingChooser(20);
    assert.equal(c.spacing, 8);
    c.noteBurst(0, 0);
    c.noteBurst(Number.NaN, 0);
    c.noteBurst(-3, 0);
    assert.equal(c.choose(0, null), 8, 'nothing recorded');
    feed(c, [300, 300, 300]);
    assert.equal(c.choose(300, null), 8);
    assert.equal(clampSpacing(0), 1);
    assert.equal(clampSpacing(2.4), 2);
  });
});
