/**
 * Requests waiting for the box's answer (subscribe → subscribed, mix →
 * mixing, unsubscribe → unsubscribed), and the rules that tell an answer from
 * a message of the same type that answers nothing (a choice the box restored
 * on its own, the admin's change). Portable.
 */
import type { BoxMessage } from '../protocol/messages.js';

interface Pending {
  type: string;
  msg: object;
  matches: (m: BoxMessage) => boolean;
  resolve: (m: BoxMessage) => void;
  reject: (e: Error) => void;
}

export class PendingRequests {
  private pending: Pending[] = [];

  /** Waits for an answer of type `answer` that `matches`; the promise never rejects unhandled. */
  add(answer: string, msg: object, matches: (m: BoxMessage) => boolean = () => true): Promise<BoxMessage> {
    const p = new Promise<BoxMessage>((resolve, reject) => {
      this.pending.push({ type: answer, msg, matches, resolve, reject });
    });
    // A caller that does not await must not get an unhandled rejection; one that does still sees it.
    p.catch(() => undefined);
    return p;
  }

  /** Whether a request waiting for `type` is still unanswered. */
  has(type: string): boolean {
    return this.pending.some((q) => q.type === type);
  }

  /** A subscribe, mix or unsubscribe still unanswered: a choice newer than anything the box has shown. */
  choicePending(): boolean {
    return this.pending.some((q) => q.type === 'subscribed' || q.type === 'mixing' || q.type === 'unsubscribed');
  }

  /**
   * Settles the oldest request of `type` that `msg` answers. The box
   * coalesces mix messages that come close together and answers only the last
   * of them, so one `mixing` settles every mix up to the newest one it shows;
   * without this a dragged fader would leave its merged requests pending.
   */
  settle(type: string, msg: BoxMessage): void {
    let i = this.pending.findIndex((q) => q.type === type && q.matches(msg));
    if (i < 0) return;
    if (type === 'mixing' && msg.mix && typeof msg.mix === 'object') {
      for (let j = this.pending.length - 1; j > i; j--) {
        const q = this.pending[j]!;
        if (q.type === 'mixing' && q.matches(msg) && fieldsMatch(omitType(q.msg), msg.mix)) {
          i = j;
          break;
        }
      }
      const settled = this.pending.filter((q, j) => j <= i && q.type === 'mixing');
      this.pending = this.pending.filter((q, j) => !(j <= i && q.type === 'mixing'));
      for (const q of settled) q.resolve(msg);
      return;
    }
    this.pending.splice(i, 1)[0]!.resolve(msg);
  }

  /** The box refused the request behind the oldest one waiting for `type`. */
  refuse(type: string, err: Error): void {
    const i = this.pending.findIndex((q) => q.type === type);
    if (i >= 0) this.pending.splice(i, 1)[0]!.reject(err);
  }

  /** Fails every request (the client was closed for good). */
  failAll(err: Error): void {
    for (const q of this.pending.splice(0)) q.reject(err);
  }
}

/** A mix request without what the box's answer does not echo in `mix`: its type and the transport choice. */
function omitType(msg: object): object {
  const { type: _type, transport: _transport, redundancy: _redundancy, spacing: _spacing, ...rest } = msg as Record<string, unknown>;
  return rest;
}

/** True when every field `want` gives has the same value in `got` (which may have more: the box fills defaults in). */
export function fieldsMatch(want: unknown, got: unknown): boolean {
  if (Array.isArray(want)) return Array.isArray(got) && got.length === want.length && want.every((w, k) => fieldsMatch(w, got[k]));
  if (want !== null && typeof want === 'object') {
    if (got === null || typeof got !== 'object') return false;
    return Object.entries(want).every(([k, v]) => fieldsMatch(v, (got as Record<string, unknown>)[k]));
  }
  return want === got;
}
