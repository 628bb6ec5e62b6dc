import { createHash, timingSafeEqual } from 'node:crypto';
import type { AdminConfig } from '../config/config-schema';
import { ControlError } from './control-messages';

/** Addresses whose failures are remembered; beyond it the oldest are forgotten. */
const MAX_TRACKED = 1024;
const MAX_LOCKOUT_MS = 3600_000;

interface Failures {
  count: number;
  lockouts: number;
  lockedUntil: number;
}

/**
 * Checks the engineer's token. The comparison is constant-time over hashes
 * (so neither the content nor the length leaks through timing), and wrong
 * tokens are counted per remote address: after `maxFailures` the address is
 * locked out for `lockoutS`, doubling with each further lockout, and every
 * attempt while locked (even a right one) is refused without being checked.
 * A success clears the address's record. Errors never contain the token.
 */
export class AdminAuth {
  private readonly digest: Buffer | null;
  private readonly failures = new Map<string, Failures>();

  constructor(
    private readonly cfg: AdminConfig,
    private readonly now: () => number = Date.now,
  ) {
    this.digest = cfg.token === null ? null : sha256(cfg.token);
  }

  /** Throws ControlError unless `token` is the admin token and `address` is not locked out. */
  check(address: string, token: string): void {
    if (this.digest === null) throw new ControlError('admin-disabled', 'no admin token is configured on this box (admin.token); admin actions are disabled', 'auth');
    const now = this.now();
    const f = this.failures.get(address);
    if (f && f.lockedUntil > now) {
      throw new ControlError('auth-locked', `too many wrong tokens from ${address}; try again in ${Math.ceil((f.lockedUntil - now) / 1000)} s`, 'auth');
    }
    if (timingSafeEqual(sha256(token), this.digest)) {
      this.failures.delete(address);
      return;
    }
    const rec = f ?? { count: 0, lockouts: 0, lockedUntil: 0 };
    rec.count++;
    let text = 'wrong admin token';
    if (rec.count >= this.cfg.maxFailures) {
      const ms = Math.min(MAX_LOCKOUT_MS, this.cfg.lockoutS * 1000 * 2 ** rec.lockouts);
      rec.lockouts++;
      rec.count = 0;
      rec.lockedUntil = now + ms;
      text += `; ${this.cfg.maxFailures} wrong tokens from ${address}, locked out for ${Math.round(ms / 1000)} s`;
    } else {
      text += ` (${this.cfg.maxFailures - rec.count} attempt(s) left before a lockout)`;
    }
    this.failures.delete(address);
    this.failures.set(address, rec);
    if (this.failures.size > MAX_TRACKED) this.failures.delete(this.failures.keys().next().value!);
    throw new ControlError('bad-credentials', text, 'auth');
  }
}

function sha256(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest();
}
