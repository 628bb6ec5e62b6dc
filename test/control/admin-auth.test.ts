import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AdminAuth } from '../../src/control/admin-auth';
import { ControlError } from '../../src/control/control-messages';

/** The clock is injected so lockouts can be tested without waiting a minute; the check itself is the real one. */

const TOKEN = 'correct horse 4711';

function attempt(auth: AdminAuth, address: string, token: string): string {
  try {
    auth.check(address, token);
    return 'ok';
  } catch (err) {
    assert.ok(err instanceof ControlError);
    assert.ok(!err.message.includes(token), `the error repeats the token: ${err.message}`);
    return `${err.code}: ${err.message}`;
  }
}

test('the right token passes; a wrong one is refused with the attempts left and never echoed', () => {
  const auth = new AdminAuth({ token: TOKEN, maxFailures: 3, lockoutS: 60 });
  assert.equal(attempt(auth, '10.0.0.1', TOKEN), 'ok');
  assert.equal(attempt(auth, '10.0.0.1', 'guess-1'), 'bad-credentials: wrong admin token (2 attempt(s) left before a lockout)');
  assert.equal(attempt(auth, '10.0.0.1', TOKEN.slice(0, -1)), 'bad-credentials: wrong admin token (1 attempt(s) left before a lockout)');
});

test('after maxFailures the address is locked out, even for the right token; others are not; the lockout doubles', () => {
  let now = 1_000_000;
  const auth = new AdminAuth({ token: TOKEN, maxFailures: 3, lockoutS: 60 }, () => now);
  for (let i = 0; i < 2; i++) assert.match(attempt(auth, 'a', 'x'), /^bad-credentials/);
  assert.match(attempt(auth, 'a', 'x'), /^bad-credentials: wrong admin token; 3 wrong tokens from a, locked out for 60 s/);
  assert.match(attempt(auth, 'a', TOKEN), /^auth-locked: too many wrong tokens from a; try again in 60 s/);
  assert.equal(attempt(auth, 'b', TOKEN), 'ok', 'another address is not affected');
  now += 61_000;
  for (let i = 0; i < 2; i++) attempt(auth, 'a', 'x');
  assert.match(attempt(auth, 'a', 'x'), /locked out for 120 s/);
  now += 121_000;
  assert.equal(attempt(auth, 'a', TOKEN), 'ok');
  // A success forgets the record: the next lockout is the short one again.
  for (let i = 0; i < 2; i++) attempt(auth, 'a', 'x');
  assert.match(attempt(auth, 'a', 'x'), /locked out for 60 s/);
});

test('without a configured token every attempt is refused with admin-disabled', () => {
  const auth = new AdminAuth({ token: null, maxFailures: 3, lockoutS: 60 });
  assert.match(attempt(auth, 'a', 'anything'), /^admin-disabled: no admin token is configured/);
});
