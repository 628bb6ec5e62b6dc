import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LatencyHistogram } from '../../src/metrics/latency-histogram';

test('quantiles land on the bucket holding them, 1 µs wide below 2 ms', () => {
  const h = new LatencyHistogram();
  for (let i = 1; i <= 1000; i++) h.record(i / 1000); // 1 µs .. 1 ms
  assert.equal(h.quantile(0.5), 0.501);
  assert.equal(h.quantile(0.99), 0.991);
  assert.equal(h.count, 1000);
});

test('a quantile never reads above the largest value recorded', () => {
  const h = new LatencyHistogram();
  h.record(6.404);
  assert.equal(h.quantile(0.999), 6.404);
  assert.equal(h.summary().maxMs, 6.404);
});

test('values past 100 ms go to the overflow bucket and report the max', () => {
  const h = new LatencyHistogram();
  h.record(250);
  assert.equal(h.quantile(0.5), 250);
  h.reset();
  assert.deepEqual(h.summary(), { count: 0, p50Ms: 0, p99Ms: 0, p999Ms: 0, maxMs: 0 });
});
