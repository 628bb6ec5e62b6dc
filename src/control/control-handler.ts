import type { StreamConfig } from '../config/config-schema';
import { MixCapacityError, OutputRegistry } from '../pool/output-registry';
import type { ClientConnection } from '../transport/client-connection';
import { CLOSE } from '../protocol/close-codes';
import { ControlError, MIX_CODECS, parseClientMessage, presetNameProblem, type ClientMessage, type Mix } from './control-messages';
import { checkMixAgainstMetadata, resolveMix, settleMixCodec } from './mix-request';
import type { ChannelMetadata } from './channel-metadata';
import type { AdminAuth } from './admin-auth';
import type { ClientMemory, Recalled } from './client-memory';
import type { ChannelCodec } from '../protocol/codecs';
import { ControlRateLimiter, FLOOD_WINDOW_MS } from './control-rate-limiter';
import { PROTOCOL_VERSION, type AudioTransport, type SourceInfo } from '../protocol/messages';
import type { Logger } from '../logging/logger';

/** What clients are told about the capture source (welcome and "source" messages). */
export type { SourceInfo };
import { RecordingError } from '../recording/recording-error';
import { WebRtcError } from '../transport/webrtc-error';
import { isRecordingMessage, type RecordingMessage } from '../recording/recording-messages';

export interface ControlDeps {
  version: string;
  stream: StreamConfig;
  outputs: OutputRegistry;
  source(): SourceInfo;
  /** Called on a valid hello, before anything else: false when the box is full and has closed the connection (1013). */
  admit(conn: ClientConnection, clientId: string): boolean;
  /** Called once a client has said hello with `clientId`; returns the connection it replaced, if any. */
  claimClientId(conn: ClientConnection, clientId: string): ClientConnection | null;
  /** The open connection of `clientId`, if any. */
  findClient(clientId: string): ClientConnection | null;
  /** Every open connection. */
  clients(): Iterable<ClientConnection>;
  metadata: ChannelMetadata;
  auth: AdminAuth;
  close(conn: ClientConnection, code: number, reason: string): void;
  log: Logger;
  /** Capture rate (Hz) and period (frames), for mix render state. */
  rate(): number;
  periodFrames: number;
  /** The box's UDP port for audio datagrams, or null when it offers no UDP. */
  udpPort(): number | null;
  /** Answers browsers' WebRTC offers (transport/webrtc-routes.ts); null when the box offers no WebRTC. */
  webrtc: { offer(conn: ClientConnection, sdp: unknown): Promise<string>; release(conn: ClientConnection): void } | null;
  /** Saved client state; null when the state dir is unusable (nothing is remembered). */
  memory: ClientMemory | null;
  /** Answers the admin's recording and playback messages (recording/recording-control.ts). */
  recording?: { handle(msg: RecordingMessage): Promise<object> };
}

/** Fader moves closer together than this are coalesced; the last one always wins. */
export const MIX_COALESCE_MS = 50;

interface ControlState {
  rate: ControlRateLimiter;
  lastRateError: number;
  lastMixAt: number;
  /** The newest coalesced mix waiting for the window to pass, and who sent it (the client or the admin). */
  pendingMix: { msg: Mix; by: ClientConnection } | null;
  mixTimer: NodeJS.Timeout | null;
  /** The mix this client hears (as sent: links and groups are resolved again when metadata changes). */
  mix: Mix | null;
  admin: boolean;
}

/** A mix as the box reports it back: the message without its envelope. */
function mixView(m: Mix): object {
  return { codec: m.codec, output: m.output, masterDb: m.masterDb, channels: m.channels, groups: m.groups, limiter: m.limiter, ...(m.opus ? { opus: m.opus } : {}) };
}

/**
 * Applies client control messages. Every error goes back to the client that
 * caused it only; nothing a client sends can throw out of here.
 */
export class ControlHandler {
  private readonly state = new WeakMap<ClientConnection, ControlState>();

  constructor(private readonly deps: ControlDeps) {}

  private stateOf(conn: ClientConnection): ControlState {
    let st = this.state.get(conn);
    if (!st) {
      st = {
        rate: new ControlRateLimiter(this.deps.stream.controlRatePerSecond, this.deps.stream.controlBurst, performance.now()),
        lastRateError: -Infinity,
        lastMixAt: -Infinity,
        pendingMix: null,
        mixTimer: null,
        mix: null,
        admin: false,
      };
      this.state.set(conn, st);
    }
    return st;
  }

  onText(conn: ClientConnection, text: string): void {
    const st = this.stateOf(conn);
    const now = performance.now();
    const verdict = st.rate.take(now);
    if (verdict !== 'pass') {
      if (verdict === 'flood') {
        this.deps.close(conn, CLOSE.FLOOD, `control message flood: more than ${st.rate.floodDrops} messages dropped within ${FLOOD_WINDOW_MS} ms`);
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
    if (isRecordingMessage(msg)) {
      this.requireAdmin(st, msg.type);
      this.recording(conn, msg);
      return;
    }
    switch (msg.type) {
      case 'hello': {
        if (conn.clientId !== null) throw new ControlError('already-hello', `hello was already received for clientId ${conn.clientId}`, 'hello');
        if (!this.deps.admit(conn, msg.clientId)) return;
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
          mixCodecs: MIX_CODECS,
          role: 'musician',
          boxNs: process.hrtime.bigint().toString(),
          restored: recalled ? (recalled.mode === 'mix' ? { mode: 'mix', codec: recalled.mix.codec } : { mode: 'channels', codec: recalled.codec }) : null,
          transports: this.transports(),
          ...(conn.flow && this.deps.udpPort() !== null ? { udp: { port: this.deps.udpPort(), token: conn.flow.tokenHex } } : {}),
        });
        this.send(conn, this.deps.metadata.message());
        if (recalled) this.restore(conn, recalled, st);
        return;
      }
      case 'auth': {
        try {
          this.deps.auth.check(conn.ip, msg.token);
        } catch (err) {
          if (err instanceof ControlError) this.deps.log.warn({ clientId: conn.clientId, address: conn.address, code: err.code }, 'admin authentication refused');
          throw err;
        }
        st.admin = true;
        this.deps.log.info({ clientId: conn.clientId, address: conn.address }, 'admin authenticated');
        this.send(conn, { type: 'auth-ok', role: 'admin' });
        return;
      }
      case 'set-metadata': {
        this.requireAdmin(st, msg.type);
        this.deps.metadata.replace(msg, this.deps.source().channels);
        this.deps.log.info({ clientId: conn.clientId, channels: msg.channels.length }, 'channel metadata changed');
        this.metadataChanged();
        return;
      }
      case 'set-output-limit': {
        this.requireAdmin(st, msg.type);
        this.deps.metadata.setMaxOutputDb(msg.maxOutputDb);
        this.deps.log.info({ clientId: conn.clientId, maxOutputDb: msg.maxOutputDb }, 'box-wide output limit changed');
        this.metadataChanged();
        return;
      }
      case 'list-clients': {
        this.requireAdmin(st, msg.type);
        const now = performance.now();
        const connected = [...this.deps.clients()].filter((c) => c.clientId !== null).map((c) => ({ ...c.info(now), admin: this.state.get(c)?.admin ?? false }));
        this.send(conn, { type: 'clients', connected, saved: this.deps.memory?.all() ?? [] });
        return;
      }
      case 'get-mix': {
        const target = msg.client ?? conn.clientId!;
        if (target !== conn.clientId) this.requireAdmin(st, msg.type, `only the admin may read another client's mix`);
        const live = this.deps.findClient(target);
        if (!live && !this.deps.memory?.known(target)) {
          throw new ControlError('unknown-client', `client ${JSON.stringify(target)} is not connected and the box has nothing saved for it`, msg.type);
        }
        const mix = live ? (this.state.get(live)?.mix ?? null) : this.savedMix(target);
        this.send(conn, { type: 'mix-state', client: target, connected: live !== null, mix: mix ? mixView(mix) : null });
        return;
      }
      case 'save-preset':
      case 'load-preset':
      case 'delete-preset':
      case 'list-presets': {
        this.preset(conn, msg, st);
        return;
      }
      case 'transport': {
        this.chooseTransport(conn, msg.transport, msg.redundancy, msg.spacing, 'transport');
        this.send(conn, { type: 'transport', asked: msg.transport, ...this.transportNow(conn) });
        return;
      }
      case 'webrtc-offer': {
        const webrtc = this.deps.webrtc;
        if (!webrtc) throw new ControlError('bad-transport', `transport "webrtc" is not offered by this box; allowed: ${this.transports().map((t) => JSON.stringify(t)).join(', ')}`, msg.type);
        webrtc.offer(conn, msg.sdp).then(
          (sdp) => this.send(conn, { type: 'webrtc-answer', sdp }),
          (err: Error & { code?: string }) => {
            const code = err instanceof WebRtcError ? err.code : 'webrtc-unavailable';
            if (code !== 'bad-sdp') this.deps.log.warn({ clientId: conn.clientId, address: conn.address, code, err: err.message }, 'webrtc offer refused');
            this.sendError(conn, new ControlError(code, err.message, msg.type));
          },
        );
        return;
      }
      case 'subscribe': {
        if (msg.transport !== undefined) this.chooseTransport(conn, msg.transport, msg.redundancy, msg.spacing, 'subscribe');
        this.subscribe(conn, msg.channels, msg.codec);
        this.dropMix(st);
        return;
      }
      case 'unsubscribe': {
        if (conn.output) this.deps.outputs.unsubscribe(conn, conn.output);
        conn.output = null;
        conn.clearQueue();
        this.dropMix(st);
        this.send(conn, { type: 'unsubscribed' });
        return;
      }
      case 'mix': {
        const target = msg.client ?? conn.clientId!;
        if (target !== conn.clientId) this.requireAdmin(st, msg.type, `only the admin may change another client's mix (${JSON.stringify(target)})`);
        if (msg.transport !== undefined || msg.redundancy !== undefined || msg.spacing !== undefined) {
          if (target !== conn.clientId) {
            throw new ControlError('bad-transport', `transport and redundancy choose how this connection's own audio travels; they cannot be set for another client (${JSON.stringify(target)})`, 'mix');
          }
          this.chooseTransport(conn, msg.transport ?? conn.transport.asked, msg.redundancy, msg.spacing, 'mix');
        }
        settleMixCodec(msg, this.deps.rate(), this.deps.stream.opusBitrateKbps);
        this.checkChannels(msg.channels.map((c) => c.ch), 'mix');
        checkMixAgainstMetadata(msg, this.deps.metadata);
        if (target === conn.clientId) {
          this.queueMix(conn, st, msg, conn);
          return;
        }
        const live = this.deps.findClient(target);
        if (live) {
          this.queueMix(live, this.stateOf(live), msg, conn);
          return;
        }
        if (!this.deps.memory?.known(target)) {
          throw new ControlError('unknown-client', `client ${JSON.stringify(target)} is not connected and the box has nothing saved for it`, 'mix');
        }
        this.deps.memory.rememberMix(target, this.deps.memory.nameOf(target), msg);
        this.deps.log.info({ clientId: conn.clientId, target }, 'admin changed the saved mix of an offline client');
        this.send(conn, { type: 'mixing', client: target, connected: false, mix: mixView(msg) });
        return;
      }
      case 'report': {
        conn.playbackBufferMs = msg.bufferMs;
        conn.underruns = msg.underruns;
        if (msg.recovered !== undefined) conn.recovered = msg.recovered;
        if (msg.concealed !== undefined) conn.concealed = msg.concealed;
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

  /** The audio transports this box offers. */
  private transports(): AudioTransport[] {
    return ['ws', ...(this.deps.udpPort() !== null ? (['udp'] as const) : []), ...(this.deps.webrtc ? (['webrtc'] as const) : [])];
  }

  /** Checks and sets how `conn`'s audio travels; it takes effect once a datagram route is up. */
  private chooseTransport(conn: ClientConnection, transport: AudioTransport, redundancy: number | undefined, spacing: number | undefined, ref: string): void {
    const offered = this.transports();
    if (!offered.includes(transport)) {
      throw new ControlError('bad-transport', `transport ${JSON.stringify(transport)} is not offered by this box; allowed: ${offered.map((t) => JSON.stringify(t)).join(', ')}`, ref);
    }
    if (transport === 'ws' && redundancy !== undefined && redundancy > 0) {
      throw new ControlError('bad-transport', `redundancy ${redundancy} applies to datagrams; over "ws" (TCP) nothing is lost, so allowed: 0`, ref);
    }
    // A client that leaves its data channel frees the peer for another browser (webrtc.maxPeers).
    if (transport !== 'webrtc' && conn.transport.asked === 'webrtc') this.deps.webrtc?.release(conn);
    conn.setTransport(transport, redundancy ?? (transport === 'ws' ? 0 : 1), spacing ?? 1);
  }

  /** The answer's transport fields: what was asked and what carries the audio now. */
  private transportNow(conn: ClientConnection): object {
    const t = conn.transport;
    return { audio: t.now, redundancy: t.redundancy, spacing: t.spacing };
  }

  /** `restored`: the box does it on its own after `hello`, and the answer says so (it answers no request). */
  private subscribe(conn: ClientConnection, channels: number[], codec: ChannelCodec, restored = false): void {
    this.checkChannels(channels, 'subscribe');
    // Re-subscribing to the same output must not cost a period of audio.
    if (conn.output?.key !== OutputRegistry.keyOf(codec, channels)) {
      if (conn.output) this.deps.outputs.unsubscribe(conn, conn.output);
      conn.clearQueue();
      conn.output = this.deps.outputs.subscribe(conn, codec, channels);
    }
    this.deps.memory?.rememberChannels(conn.clientId!, conn.name, channels, codec);
    const t = conn.transport;
    const transport = { transport: t.asked, audio: t.now, redundancy: t.redundancy, spacing: t.spacing };
    this.send(conn, restored ? { type: 'subscribed', channels, codec, ...transport, restored: true } : { type: 'subscribed', channels, codec, ...transport });
  }

  /** Puts a returning client back where it was; a saved choice the device can no longer serve is reported, not fatal. */
  private restore(conn: ClientConnection, r: Recalled, st: ControlState): void {
    try {
      if (r.mode === 'channels') this.subscribe(conn, r.channels, r.codec, true);
      else {
        settleMixCodec(r.mix, this.deps.rate(), this.deps.stream.opusBitrateKbps);
        this.checkChannels(r.mix.channels.map((c) => c.ch), 'mix');
        this.applyMix(conn, r.mix, st, conn, true);
      }
    } catch (err) {
      if (err instanceof ControlError) this.sendError(conn, new ControlError(err.code, `saved ${r.mode} not restored: ${err.message}`));
      else throw err;
    }
  }

  /** Every channel exists on the device (when its count is known) and appears once. */
  private checkChannels(channels: readonly number[], ref: 'subscribe' | 'mix' | 'load-preset'): void {
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

  /**
   * Applies `msg` to `conn` now, or, within MIX_COALESCE_MS of its last mix,
   * keeps it as the one pending mix (a newer one replaces it) applied when
   * the window ends: a flood of fader moves costs one render change per
   * window and the last value always lands.
   */
  private queueMix(conn: ClientConnection, st: ControlState, msg: Mix, by: ClientConnection): void {
    const wait = st.lastMixAt + MIX_COALESCE_MS - performance.now();
    if (wait <= 0 && st.mixTimer === null) {
      this.applyMix(conn, msg, st, by);
      return;
    }
    st.pendingMix = { msg, by };
    st.mixTimer ??= setTimeout(() => {
      st.mixTimer = null;
      const pending = st.pendingMix;
      st.pendingMix = null;
      if (!pending) return;
      if (conn.closed) {
        // The phone left before the window ended: its last fader move is still the mix to restore, unless a
        // newer connection with its clientId has taken over (that one's own choices win).
        if (this.deps.findClient(conn.clientId!) === null) this.deps.memory?.rememberMix(conn.clientId!, conn.name, pending.msg);
        return;
      }
      // Runs from a timer: nothing may escape, and the error goes to whoever sent the mix.
      try {
        this.applyMix(conn, pending.msg, st, pending.by);
      } catch (err) {
        this.sendError(pending.by, err instanceof ControlError ? err : new ControlError('invalid-message', `internal error applying the mix: ${(err as Error).message}`, 'mix'));
      }
    }, Math.max(0, wait));
  }

  private applyMix(conn: ClientConnection, msg: Mix, st: ControlState, by: ClientConnection = conn, restored = false): void {
    st.lastMixAt = performance.now();
    this.render(conn, msg);
    st.mix = msg;
    this.deps.memory?.rememberMix(conn.clientId!, conn.name, msg);
    const t = conn.transport;
    const reply: Record<string, unknown> = { type: 'mixing', codec: msg.codec, output: msg.output, channels: msg.channels.length, mix: mixView(msg), transport: t.asked, audio: t.now, redundancy: t.redundancy, spacing: t.spacing };
    if (restored) reply.restored = true;
    if (by !== conn) {
      reply.by = 'admin';
      this.send(by, { type: 'mixing', client: conn.clientId, connected: true, mix: mixView(msg) });
    }
    this.send(conn, reply);
  }

  /** Points the client at the render of `msg` as the current metadata resolves it. */
  private render(conn: ClientConnection, msg: Mix): void {
    const req = resolveMix(msg, this.deps.metadata);
    const before = conn.output;
    try {
      conn.output = this.deps.outputs.setMix(conn, conn.output, req, this.deps.rate(), this.deps.periodFrames);
    } catch (err) {
      if (err instanceof MixCapacityError) throw new ControlError('too-many-mixes', err.message, 'mix');
      throw err;
    }
    if (before !== conn.output) conn.clearQueue();
  }

  /** Metadata or the box-wide limit changed: tell everyone, and re-resolve every mix (links, groups, ceiling). */
  private metadataChanged(): void {
    const msg = this.deps.metadata.message();
    for (const c of this.deps.clients()) {
      if (c.clientId === null || c.closed) continue;
      this.send(c, msg);
      const st = this.state.get(c);
      if (!st?.mix || !c.output?.mix) continue;
      try {
        this.render(c, st.mix);
      } catch (err) {
        // One client's mix that can no longer be rendered must not stop the others'.
        this.sendError(c, err instanceof ControlError ? err : new ControlError('invalid-message', `internal error re-resolving your mix: ${(err as Error).message}`, 'mix'));
      }
    }
  }

  /** The client left mix mode: it has no current mix, and a coalesced one still pending must not pull it back. */
  private dropMix(st: ControlState): void {
    st.mix = null;
    st.pendingMix = null;
    if (st.mixTimer) clearTimeout(st.mixTimer);
    st.mixTimer = null;
  }

  /** Recording and playback touch drives and files: the answer, or the refusal, goes to the admin who asked once they are done. */
  private recording(conn: ClientConnection, msg: RecordingMessage): void {
    const r = this.deps.recording;
    if (!r) throw new ControlError('invalid-message', 'recording is not available on this box', msg.type);
    r.handle(msg).then(
      (reply) => this.send(conn, reply),
      (err: Error) => this.sendError(conn, err instanceof RecordingError ? new ControlError(err.code, err.message, msg.type) : new ControlError('invalid-message', `internal error: ${err.message}`, msg.type)),
    );
  }

  private requireAdmin(st: ControlState, ref: string, what = `${ref} is for the admin only`): void {
    if (!st.admin) throw new ControlError('forbidden', `${what}; authenticate with an "auth" message first`, ref);
  }

  private savedMix(clientId: string): Mix | null {
    const r = this.deps.memory?.recall(clientId);
    return r?.mode === 'mix' ? r.mix : null;
  }

  private preset(conn: ClientConnection, msg: Extract<ClientMessage, { type: 'save-preset' | 'load-preset' | 'delete-preset' | 'list-presets' }>, st: ControlState): void {
    const memory = this.deps.memory;
    if (!memory) throw new ControlError('not-saved', 'presets need the state dir, which is unusable on this box (see the service log)', msg.type);
    const id = conn.clientId!;
    if (msg.type === 'list-presets') {
      this.send(conn, { type: 'presets', names: memory.presetNames(id) });
      return;
    }
    const problem = presetNameProblem(msg.name);
    if (problem) throw new ControlError('bad-preset-name', problem, msg.type);
    const shown = JSON.stringify(msg.name);
    switch (msg.type) {
      case 'save-preset': {
        if (!st.mix) throw new ControlError('no-mix', 'there is no mix to save; send a mix first', msg.type);
        if (!memory.savePreset(id, msg.name, st.mix)) {
          throw new ControlError('too-many-presets', `you already have ${memory.presetNames(id).length} presets, the most one client may keep; delete one first`, msg.type);
        }
        this.send(conn, { type: 'preset-saved', name: msg.name, names: memory.presetNames(id) });
        return;
      }
      case 'load-preset': {
        const mix = memory.loadPreset(id, msg.name, st.mix?.codec ?? 'pcm16');
        if (!mix) throw new ControlError('unknown-preset', `you have no preset named ${shown}; yours: ${JSON.stringify(memory.presetNames(id))}`, msg.type);
        // A preset holds levels; the codec and its settings stay what the client uses now.
        if (st.mix?.opus) mix.opus = { ...st.mix.opus };
        settleMixCodec(mix, this.deps.rate(), this.deps.stream.opusBitrateKbps);
        this.checkChannels(mix.channels.map((c) => c.ch), 'load-preset');
        this.send(conn, { type: 'preset-loaded', name: msg.name });
        this.queueMix(conn, st, mix, conn);
        return;
      }
      case 'delete-preset': {
        if (!memory.deletePreset(id, msg.name)) throw new ControlError('unknown-preset', `you have no preset named ${shown}`, msg.type);
        this.send(conn, { type: 'preset-deleted', name: msg.name, names: memory.presetNames(id) });
        return;
      }
    }
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
