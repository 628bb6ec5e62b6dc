import type { StreamConfig } from '../appliance/config-schema';
import { OutputRegistry } from '../pool/output-registry';
import type { ClientConnection } from '../transport/client-connection';
import { CLOSE } from './close-codes';
import { ControlError, parseClientMessage, type ClientMessage, type Mix } from './control-messages';
import { resolveMix, settleMixCodec } from './mix-request';
import type { ClientMemory, Recalled } from './client-memory';
import type { Codec } from '../appliance/config-schema';
import { TokenBucket } from './token-bucket';
import { PROTOCOL_VERSION } from '../engine/packet-format';

/** What clients are told about the capture source (welcome and "source" messages). */
export interface SourceInfo {
  state: string;
  kind: string;
  device: string;
  channels: number | null;
  rate: number | null;
  periodFrames: number;
  format: string | null;
}

export interface ControlDeps {
  version: string;
  stream: StreamConfig;
  outputs: OutputRegistry;
  source(): SourceInfo;
  /** Called once a client has said hello with `clientId`; returns the connection it replaced, if any. */
  claimClientId(conn: ClientConnection, clientId: string): ClientConnection | null;
  close(conn: ClientConnection, code: number, reason: string): void;
  log: { info(obj: object, msg: string): void };
  /** Capture rate (Hz) and period (frames), for mix render state. */
  rate(): number;
  periodFrames: number;
  /** Saved client state; null when the state dir is unusable (nothing is remembered). */
  memory: ClientMemory | null;
}

/** Fader moves closer together than this are coalesced; the last one always wins. */
export const MIX_COALESCE_MS = 50;

/** Rejected messages past the bucket's burst before the client is closed for flooding. */
const FLOOD_REJECTS = 200;

interface ControlState {
  bucket: TokenBucket;
  rejected: number;
  lastRateError: number;
  lastMixAt: number;
  pendingMix: Mix | null;
  mixTimer: NodeJS.Timeout | null;
}

/**
 * Applies client control messages. Every error goes back to the client that
 * caused it only; nothing a client sends can throw out of here.
 */
export class ControlHandler {
  private readonly state = new WeakMap<ClientConnection, ControlState>();

  constructor(private readonly deps: ControlDeps) {}

  onText(conn: ClientConnection, text: string): void {
    let st = this.state.get(conn);
    if (!st) {
      st = {
        bucket: new TokenBucket(this.deps.stream.controlRatePerSecond, this.deps.stream.controlBurst),
        rejected: 0,
        lastRateError: -Infinity,
        lastMixAt: -Infinity,
        pendingMix: null,
        mixTimer: null,
      };
      this.state.set(conn, st);
    }
    const now = performance.now();
    if (!st.bucket.take(now)) {
      if (++st.rejected >= FLOOD_REJECTS) {
        this.deps.close(conn, CLOSE.FLOOD, 'control message flood');
        return;
      }
      if (now - st.lastRateError > 1000) {
        st.lastRateError = now;
        this.sendError(
          conn,
          new ControlError(
            'rate-limited',
            `more than ${this.deps.stream.controlRatePerSecond} control messages per second (burst ${this.deps.stream.controlBurst}); messages dropped`,
          ),
        );
      }
      return;
    }
    st.rejected = 0;
    try {
      this.apply(conn, parseClientMessage(text), st);
    } catch (err) {
      if (err instanceof ControlError) {
        this.sendError(conn, err);
        if (err.code === 'unsupported-protocol') this.deps.close(conn, CLOSE.UNSUPPORTED_PROTOCOL, err.message.slice(0, 120));
      } else this.sendError(conn, new ControlError('invalid-message', `internal error handling message: ${(err as Error).message}`));
    }
  }

  private apply(conn: ClientConnection, msg: ClientMessage, st: ControlState): void {
    if (msg.type !== 'hello' && conn.clientId === null) {
      throw new ControlError('hello-required', `send hello first; got ${msg.type}`, msg.type);
    }
    switch (msg.type) {
      case 'hello': {
        if (conn.clientId !== null) throw new ControlError('already-hello', `hello was already received for clientId ${conn.clientId}`, 'hello');
        conn.clientId = msg.clientId;
        conn.name = msg.name;
        const replaced = this.deps.claimClientId(conn, msg.clientId);
        if (replaced) this.deps.close(replaced, CLOSE.REPLACED, 'replaced by a newer connection with the same clientId');
        const recalled = this.deps.memory?.recall(msg.clientId) ?? null;
        this.deps.memory?.touch(msg.clientId, msg.name);
        this.deps.log.info(
          { clientId: msg.clientId, name: msg.name, address: conn.address, replaced: replaced !== null, restored: recalled?.mode ?? null },
          'client hello',
        );
        this.send(conn, {
          type: 'welcome',
          protocol: PROTOCOL_VERSION,
          version: this.deps.version,
          clientId: msg.clientId,
          source: this.deps.source(),
          codecs: ['pcm16', 'pcm24', 'deflate'],
          boxNs: process.hrtime.bigint().toString(),
          restored: recalled ? (recalled.mode === 'mix' ? { mode: 'mix', codec: recalled.mix.codec } : { mode: 'channels', codec: recalled.codec }) : null,
        });
        if (recalled) this.restore(conn, recalled, st);
        return;
      }
      case 'subscribe': {
        this.subscribe(conn, msg.channels, msg.codec);
        return;
      }
      case 'unsubscribe': {
        if (conn.output) this.deps.outputs.unsubscribe(conn, conn.output);
        conn.output = null;
        conn.clearQueue();
        this.send(conn, { type: 'unsubscribed' });
        return;
      }
      case 'mix': {
        settleMixCodec(msg, this.deps.rate(), this.deps.stream.opusBitrateKbps);
        this.checkChannels(msg.channels.map((c) => c.ch), 'mix');
        const now = performance.now();
        const wait = st.lastMixAt + MIX_COALESCE_MS - now;
        if (wait <= 0 && st.mixTimer === null) {
          this.applyMix(conn, msg, st);
        } else {
          st.pendingMix = msg;
          st.mixTimer ??= setTimeout(() => {
            st.mixTimer = null;
            const pending = st.pendingMix;
            st.pendingMix = null;
            if (pending && !conn.closed) this.applyMix(conn, pending, st);
          }, Math.max(0, wait));
        }
        return;
      }
      case 'report': {
        conn.playbackBufferMs = msg.bufferMs;
        conn.underruns = msg.underruns;
        return;
      }
      case 'ping': {
        const reply: Record<string, unknown> = { type: 'pong', id: msg.id, boxNs: process.hrtime.bigint().toString() };
        if (msg.t !== undefined) reply.t = msg.t;
        this.send(conn, reply);
        return;
      }
    }
  }

  private subscribe(conn: ClientConnection, channels: number[], codec: Codec): void {
    this.checkChannels(channels, 'subscribe');
    // Re-subscribing to the same output must not cost a period of audio.
    if (conn.output?.key !== OutputRegistry.keyOf(codec, channels)) {
      if (conn.output) this.deps.outputs.unsubscribe(conn, conn.output);
      conn.clearQueue();
      conn.output = this.deps.outputs.subscribe(conn, codec, channels);
    }
    this.deps.memory?.rememberChannels(conn.clientId!, conn.name, channels, codec);
    this.send(conn, { type: 'subscribed', channels, codec });
  }

  /** Puts a returning client back where it was; a saved choice the device can no longer serve is reported, not fatal. */
  private restore(conn: ClientConnection, r: Recalled, st: ControlState): void {
    try {
      if (r.mode === 'channels') this.subscribe(conn, r.channels, r.codec);
      else {
        this.checkChannels(r.mix.channels.map((c) => c.ch), 'mix');
        this.applyMix(conn, r.mix, st);
      }
    } catch (err) {
      if (err instanceof ControlError) this.sendError(conn, new ControlError(err.code, `saved ${r.mode} not restored: ${err.message}`));
      else throw err;
    }
  }

  /** Every channel exists on the device (when its count is known) and appears once. */
  private checkChannels(channels: readonly number[], ref: 'subscribe' | 'mix'): void {
    const count = this.deps.source().channels;
    const seen = new Set<number>();
    for (const ch of channels) {
      if (count !== null && ch >= count) {
        throw new ControlError('bad-channel', `channel ${ch} does not exist; the device has ${count} channels (0-${count - 1})`, ref);
      }
      if (seen.has(ch)) throw new ControlError('bad-channel', `channel ${ch} appears more than once`, ref);
      seen.add(ch);
    }
  }

  private applyMix(conn: ClientConnection, msg: Mix, st: ControlState): void {
    st.lastMixAt = performance.now();
    const req = resolveMix(msg);
    const before = conn.output;
    conn.output = this.deps.outputs.setMix(conn, conn.output, req, this.deps.rate(), this.deps.periodFrames);
    if (before !== conn.output) conn.clearQueue();
    this.deps.memory?.rememberMix(conn.clientId!, conn.name, msg);
    this.send(conn, { type: 'mixing', codec: msg.codec, output: msg.output, channels: msg.channels.length });
  }

  /** The source's channel count changed: drop subscriptions it can no longer serve. */
  revalidate(conn: ClientConnection): void {
    const count = this.deps.source().channels;
    if (!conn.output || count === null) return;
    const bad = conn.output.channels.find((c) => c >= count);
    if (bad === undefined) return;
    this.deps.outputs.unsubscribe(conn, conn.output);
    conn.output = null;
    conn.clearQueue();
    this.sendError(conn, new ControlError('bad-channel', `channel ${bad} no longer exists; the device now has ${count} channels; subscribe again`));
  }

  send(conn: ClientConnection, msg: object): void {
    if (conn.closed) return;
    conn.ws.send(JSON.stringify(msg));
  }

  private sendError(conn: ClientConnection, err: ControlError): void {
    const msg: Record<string, unknown> = { type: 'error', code: err.code, message: err.message };
    if (err.ref) msg.ref = err.ref;
    this.send(conn, msg);
  }
}
