import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { api } from '../helpers/recording-api';
import { startService, stopAllServices } from '../helpers/service-process';
import { StreamClient } from '../helpers/stream-client';

/**
 * The recording API's bearer token is the admin token of the WebSocket
 * `auth`, with the same lockout per address; a box without one has no
 * recording API at all.
 */

after(() => stopAllServices());

test('a box without admin.token: every recording request is 403 admin-disabled, nothing starts', async () => {
  const svc = await startService({ label: 'rec-no-admin', config: { capture: { device: 'test-signal', channels: 2 } } });
  const r = await api(svc.port, 'POST', '/api/recordings', { token: 'anything', body: {} });
  assert.equal(r.status, 403);
  assert.deepEqual(r.json(), { code: 'admin-disabled', error: 'no admin token is configured on this box (admin.token); admin actions are disabled' });
  assert.equal((await api(svc.port, 'GET', '/api/status')).json<{ recording: { state: string } }>().recording.state, 'idle');
});

test('wrong bearer tokens lock the address out (429, Retry-After), for the WebSocket auth too, even with the right token', async () => {
  const svc = await startService({ label: 'rec-lockout', config: { capture: { device: 'test-signal', channels: 2 }, admin: { token: 'right-token', maxFailures: 3, lockoutS: 60 } } });
  for (let i = 0; i < 3; i++) {
    const r = await api(svc.port, 'GET', '/api/recordings', { token: `wrong-${i}` });
    assert.equal(r.status, 401);
    assert.equal(r.json<{ code: string }>().code, 'bad-credentials');
  }
  const locked = await api(svc.port, 'POST', '/api/recordings', { token: 'right-token', body: {} });
  assert.equal(locked.status, 429);
  assert.equal(locked.json<{ code: string }>().code, 'auth-locked');
  assert.match(locked.headers['retry-after'] as string, /^\d+$/);
  const ws = await StreamClient.open(svc.port, 'rec-locked-ws');
  const err = await ws.expectError({ type: 'auth', token: 'right-token' });
  assert.equal(err.code, 'auth-locked');
  ws.close();
  assert.equal((await api(svc.port, 'GET', '/api/status')).json<{ recording: { state: string } }>().recording.state, 'idle');
});
