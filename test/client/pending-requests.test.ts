import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { PendingRequests } from '../../src/client/pending-requests';

/** Resolved (with its message) or rejected (with its error) so far: settles what can settle, then looks. */
async function outcome(p: Promise<unknown>): Promise<string> {
  let state = 'pending';
  p.then(
    (m) => (state = `resolved ${JSON.stringify(m)}`),
    (e: Error) => (state = `rejected ${e.message}`),
  );
  await new Promise((r) => setImmediate(r));
  return state;
}

describe('the client library\'s pending requests', () => {
  test('an answer settles the oldest request it matches, not one it does not', async () => {
    const q = new PendingRequests();
    const a = q.add('subscribed', { type: 'subscribe', channels: [1] }, (m) => (m.channels as number[])[0] === 1);
    const b = q.add('subscribed', { type: 'subscribe', channels: [2] }, (m) => (m.channels as number[])[0] === 2);
    q.settle('subscribed', { type: 'subscribed', channels: [2] });
    assert.equal(await outcome(a), 'pending');
    assert.equal(await outcome(b), 'resolved {"type":"subscribed","channels":[2]}');
  });

  test('one mixing answer settles every mix the box coalesced into it, up to the newest it shows, and no later one', async () => {
    const q = new PendingRequests();
    const any = (): boolean => true;
    const m1 = q.add('mixing', { type: 'mix', masterDb: -1 }, any);
    const m2 = q.add('mixing', { type: 'mix', masterDb: -2 }, any);
    const m3 = q.add('mixing', { type: 'mix', masterDb: -3 }, any);
    const answer = { type: 'mixing', mix: { masterDb: -2, output: 'stereo' } };
    q.settle('mixing', answer);
    assert.match(await outcome(m1), /^resolved/);
    assert.match(await outcome(m2), /^resolved/);
    assert.equal(await outcome(m3), 'pending', 'a newer mix the answer does not show is still waiting');
    assert.equal(q.choicePending(), true);
  });

  test('a refusal rejects the oldest request of that answer type with the box\'s code', async () => {
    const q = new PendingRequests();
    const a = q.add('mixing', { type: 'mix' });
    const b = q.add('mixing', { type: 'mix' });
    q.refuse('mixing', Object.assign(new Error('bad-channel: channel 40 does not exist'), { code: 'bad-channel' }));
    assert.equal(await outcome(a), 'rejected bad-channel: channel 40 does not exist');
    assert.equal(await outcome(b), 'pending');
  });

  test('failAll rejects everything once; later answers settle nothing', async () => {
    const q = new PendingRequests();
    const a = q.add('unsubscribed', { type: 'unsubscribe' });
    q.failAll(new Error('the client was closed'));
    assert.equal(await outcome(a), 'rejected the client was closed');
    assert.equal(q.has('unsubscribed'), false);
    q.settle('unsubscribed', { type: 'unsubscribed' });
  });
});
