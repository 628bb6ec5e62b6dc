/**
 * A stagebox stream client (docs/protocol.md): connects, says hello with a
 * stable clientId, subscribes to channels or asks for a personal mix, decodes
 * the packets, measures the round trip and the box clock offset with ping,
 * reports its playback buffer back to the box, and reconnects with backoff,
 * restoring its choice.
 *
 * Portable: the WebSocket constructor, the raw inflater (deflate) and the Opus
 * decoder are injected; everything else is plain ES2022.
 */
import type { AudioEvent, ClientError, ClientEvents, ClientStats, ConnectionState, ReconnectOptions, StageboxClientOptions, StateEvent, UdpTransportOptions, WebRtcTransportOptions, DataChannelHandlers, WebSocketConstructor, WebSocketLike } from './client-types.js';
import { ClockSync } from './clock-sync.js';
import { DatagramLink, type DatagramSocketLike } from './datagram-link.js';
import { MAX_REDUNDANCY, MAX_SPACING, tokenFromHex } from '../protocol/datagram.js';
import { JitterBuffer, type JitterBufferOptions } from './jitter-buffer.js';
import { PacketDecoder, type DecodedPacket } from './packet-decoder.js';
import { PendingRequests } from './pending-requests.js';
import { SpacingChooser } from './redundancy-spacing.js';
import { CHANNEL_CODECS, MIX_CODECS, type ChannelCodec } from '../protocol/codecs.js';
import { CLOSE } from '../protocol/close-codes.js';
import { CLIENT_ID_MAX_LENGTH, clientIdProblem } from '../protocol/client-id.js';
import { PROTOCOL_VERSION, type AudioTransport, type BoxMessage, type MixRequest, type SourceInfo, type SubscribeRequest, type Welcome } from '../protocol/messages.js';
import { TypedEmitter } from './typed-emitter.js';

export { CHANNEL_CODECS, MIX_CODECS, type ChannelCodec, type MixCodec } from '../protocol/codecs.js';
export { PROTOCOL_VERSION, type BoxMessage, type MixRequest, type SourceInfo, type SubscribeRequest, type Welcome } from '../protocol/messages.js';
export type { AudioEvent, ClientError, ClientEvents, ClientStats, ConnectionState, ReconnectOptions, StageboxClientOptions, StateEvent, UdpTransportOptions, WebRtcTransportOptions, DataChannelHandlers, WebSocketConstructor, WebSocketLike };

/** Close codes after which reconnecting would not help (docs/protocol.md section 4). */
const NO_RECONNECT: Record<number, string> = {
  [CLOSE.UNSUPPORTED_DATA]: 'the box refused a binary frame from this client',
  [CLOSE.INVALID_PAYLOAD]: 'a message from this client was not valid UTF-8',
  [CLOSE.MESSAGE_TOO_BIG]: 'a message from this client was too large for the box',
  [CLOSE.UNSUPPORTED_PROTOCOL]: "the box does not speak this client's protocol version; update the app",
  [CLOSE.REPLACED]: 'another connection with the same clientId took over',
};

type Choice = { mode: 'channels'; msg: { type: 'subscribe'; channels: number[]; codec: ChannelCodec } } | { mode: 'mix'; msg: { type: 'mix' } & MixRequest };

export class StageboxClient extends TypedEmitter<ClientEvents> {
  readonly url: string;
  readonly clientId: string;
  readonly name: string;
  private readonly WS: WebSocketConstructor;
  private readonly decoder: PacketDecoder;
  private readonly jitterOpts: Omit<JitterBufferOptions, 'rate' | 'channels'> | null;
  private readonly reconnectOpts: Required<ReconnectOptions> | null;
  private readonly pingIntervalMs: number;
  private readonly reportIntervalMs: number;
  private readonly now: () => number;

  private ws: WebSocketLike | null = null;
  private state: ConnectionState = 'closed';
  private stopped = true;
  private attempt = 0;
  private welcomedAt = NaN;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private pingTimer: ReturnType<typeof setInterval> | null = null;
  private reportTimer: ReturnType<typeof setInterval> | null = null;
  private lastError: string | null = null;
  private connectPending = false;

  private welcomeMsg: Welcome | null = null;
  private sourceInfo: SourceInfo | null = null;
  private choice: Choice | null = null;
  private readonly pending = new PendingRequests();

  private pingId = 0;
  private readonly clock = new ClockSync();
  private netLatency: number | null = null;
  private packets = 0;
  private badPackets = 0;
  private decodeChain: Promise<void> | null = null;

  private readonly udpOpts: StageboxClientOptions['udp'] | null;
  private readonly webrtcOpts: StageboxClientOptions['webrtc'] | null;
  /** The datagram transport in use or being set up, with its options. */
  private datagramKind: 'udp' | 'webrtc' | null = null;
  /** With udp.spacing 'auto': follows the loss bursts; null with a fixed spacing. */
  private readonly spacingChooser: SpacingChooser | null;
  /** Duration of the last packet's audio, ms (the unit a redundancy spacing counts in). */
  private periodMs: number | null = null;
  private link: DatagramLink | null = null;
  private audioNow: AudioTransport = 'ws';

  private jb: JitterBuffer | null = null;
  private playback: { bufferMs: number; underruns: number; concealed?: number } | null = null;
  private underrunBase = 0;
  private concealedBase = 0;

  constructor(opts: StageboxClientOptions) {
    super();
    if (typeof opts.url !== 'string' || !/^wss?:\/\/[^/\s]+/i.test(opts.url)) {
      throw new TypeError(`StageboxClient url is ${JSON.stringify(opts.url)}; allowed: a ws:// or wss:// URL such as "ws://stagebox.local:5100/"`);
    }
    if (typeof opts.clientId !== 'string' || clientIdProblem(opts.clientId) !== null) {
      throw new TypeError(`StageboxClient clientId is ${JSON.stringify(opts.clientId)}; allowed: 1-${CLIENT_ID_MAX_LENGTH} characters from A-Z a-z 0-9 . _ : -`);
    }
    const name = opts.name ?? '';
    if (typeof name !== 'string' || name.length > 64) throw new TypeError(`StageboxClient name is ${name.length} characters long; allowed: at most 64`);
    const WS = opts.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (!WS) throw new TypeError('StageboxClient needs a WebSocket: this platform has no globalThis.WebSocket, so pass one (in Node: the `ws` package)');
    this.url = opts.url;
    this.clientId = opts.clientId;
    this.name = name;
    this.WS = WS;
    this.decoder = new PacketDecoder({ inflateRaw: opts.inflateRaw, createOpusDecoder: opts.createOpusDecoder });
    this.jitterOpts = opts.jitter ? opts.jitter : null;
    this.udpOpts = opts.udp ?? null;
    if (this.udpOpts && typeof this.udpOpts.createSocket !== 'function') throw new TypeError('StageboxClient udp.createSocket must be a function that opens a datagram socket');
    this.webrtcOpts = opts.webrtc ?? null;
    if (this.webrtcOpts && typeof this.webrtcOpts.openChannel !== 'function') throw new TypeError('StageboxClient webrtc.openChannel must be a function that opens a data channel');
    for (const [name, o] of [['udp', this.udpOpts], ['webrtc', this.webrtcOpts]] as const) {
      const red = o?.redundancy ?? 1;
      if (!Number.isInteger(red) || red < 0 || red > MAX_REDUNDANCY) throw new RangeError(`StageboxClient ${name}.redundancy is ${red}; allowed: 0-${MAX_REDUNDANCY}`);
      const sp = o?.spacing ?? 'auto';
      if (sp !== 'auto' && (!Number.isInteger(sp) || sp < 1 || sp > MAX_SPACING)) {
        throw new RangeError(`StageboxClient ${name}.spacing is ${JSON.stringify(sp)}; allowed: 'auto' or 1-${MAX_SPACING}`);
      }
    }
    const spacing = (this.udpOpts ?? this.webrtcOpts)?.spacing ?? 'auto';
    this.spacingChooser = spacing === 'auto' ? new SpacingChooser() : null;
    const r = opts.reconnect;
    this.reconnectOpts =
      r === false
        ? null
        : {
            initialMs: positiveMs('reconnect.initialMs', r?.initialMs ?? 500),
            maxMs: positiveMs('reconnect.maxMs', r?.maxMs ?? 5000),
            factor: r?.factor ?? 2,
            maxAttempts: r?.maxAttempts ?? Infinity,
            resetAfterMs: r?.resetAfterMs ?? 5000,
          };
    if (this.reconnectOpts && !(this.reconnectOpts.factor >= 1)) throw new RangeError(`StageboxClient reconnect.factor is ${this.reconnectOpts.factor}; allowed: 1 or more`);
    if (this.reconnectOpts && !(this.reconnectOpts.maxAttempts >= 1)) throw new RangeError(`StageboxClient reconnect.maxAttempts is ${this.reconnectOpts.maxAttempts}; allowed: 1 or more`);
    this.pingIntervalMs = positiveMs('pingIntervalMs', opts.pingIntervalMs ?? 2000);
    this.reportIntervalMs = positiveMs('reportIntervalMs', opts.reportIntervalMs ?? 1000);
    this.now = opts.now ?? (() => performance.now());
  }

  /** The last `welcome` (null before the first). */
  get welcome(): Welcome | null {
    return this.welcomeMsg;
  }
  /** The capture source as last described by the box. */
  get source(): SourceInfo | null {
    return this.sourceInfo;
  }
  get connectionState(): ConnectionState {
    return this.state;
  }
  /** The internal jitter buffer of the current stream (option `jitter`). */
  get jitter(): JitterBuffer | null {
    return this.jb;
  }

  /** Connects (and keeps reconnecting until close()). Resolves with the first `welcome`. */
  connect(): Promise<Welcome> {
    if (!this.stopped) throw new Error(`StageboxClient.connect: already ${this.state}; call close() first`);
    this.stopped = false;
    this.attempt = 0;
    this.connectPending = true;
    const p = new Promise<Welcome>((resolve, reject) => {
      const offWelcome = this.on('welcome', (w) => {
        offWelcome();
        offState();
        this.connectPending = false;
        resolve(w);
      });
      const offState = this.on('state', (st) => {
        if (st.state !== 'closed' || st.retryInMs !== null) return;
        offWelcome();
        offState();
        this.connectPending = false;
        reject(new Error(`no welcome from ${this.url}: the connection closed (${st.closeCode ?? '?'}${st.reason ? ` ${st.reason}` : ''}) and the client stopped`));
      });
    });
    p.catch(() => undefined);
    this.open();
    return p;
  }

  /** Subscribes to raw channels; resolves on `subscribed`, rejects on the box's error. Sent now or after the next welcome. */
  subscribe(req: SubscribeRequest): Promise<BoxMessage> {
    const codec = req.codec ?? 'pcm16';
    const offered = this.welcomeMsg?.codecs ?? CHANNEL_CODECS;
    if (!(CHANNEL_CODECS as readonly string[]).includes(codec) || !offered.includes(codec)) {
      throw new RangeError(`codec ${JSON.stringify(codec)} is not a channel codec of this box; allowed: ${offered.map((c) => JSON.stringify(c)).join(', ')}`);
    }
    if (!this.decoder.supports(codec)) throw new RangeError(`codec "deflate" needs an inflateRaw function, which this client was not given; allowed here: "pcm16", "pcm24"`);
    const channels = checkChannels(req.channels, this.sourceInfo?.channels ?? null);
    this.choice = { mode: 'channels', msg: { type: 'subscribe', channels, codec } };
    const key = channels.join(',');
    return this.request('subscribed', this.choice.msg, (m) => m.codec === codec && Array.isArray(m.channels) && m.channels.join(',') === key);
  }

  /** Asks for a personal mix; resolves on `mixing`, rejects on the box's error. */
  mix(req: MixRequest): Promise<BoxMessage> {
    const codec = req.codec ?? 'pcm16';
    const offered = this.welcomeMsg?.mixCodecs ?? MIX_CODECS;
    if (!(MIX_CODECS as readonly string[]).includes(codec) || !offered.includes(codec)) {
      throw new RangeError(`codec ${JSON.stringify(codec)} is not a mix codec of this box; allowed: ${offered.map((c) => JSON.stringify(c)).join(', ')}`);
    }
    if (!this.decoder.supports(codec)) throw new RangeError(`codec "opus" needs a createOpusDecoder function, which this client was not given; allowed here: "pcm16", "pcm24"`);
    if (!req || !Array.isArray(req.channels)) throw new TypeError('mix needs a channels array');
    this.choice = { mode: 'mix', msg: { type: 'mix', ...req, codec } };
    const output = req.output ?? 'stereo';
    return this.request('mixing', this.choice.msg, (m) => m.codec === codec && m.output === output);
  }

  /** Stops the audio; the connection stays open. */
  unsubscribe(): Promise<BoxMessage> {
    this.choice = null;
    return this.request('unsubscribed', { type: 'unsubscribe' });
  }

  /** Sends any other control message (auth, presets, get-mix …); answers arrive as 'message' events. */
  send(msg: { type: string; [k: string]: unknown }): void {
    if (!this.ws || this.state !== 'open') throw new Error(`StageboxClient.send(${JSON.stringify(msg.type)}): not connected (state ${this.state})`);
    this.ws.send(JSON.stringify(msg));
  }

  /**
   * What the app's own playback reports to the box (`report`), when it keeps
   * its jitter buffer elsewhere (an AudioWorklet). `underruns` counts since
   * the app started; the client reports them per connection.
   */
  setPlaybackStats(stats: { bufferMs: number; underruns: number; concealed?: number }): void {
    this.playback = { bufferMs: stats.bufferMs, underruns: stats.underruns, ...(stats.concealed !== undefined ? { concealed: stats.concealed } : {}) };
  }

  /** Fills `out` from the internal jitter buffer (silence without one). Call from the playback clock. */
  pull(out: Float32Array, nowMs = this.now()): void {
    if (this.jb) this.jb.pull(out, nowMs);
    else out.fill(0);
  }

  stats(): ClientStats {
    const best = this.clock.best();
    return {
      rttMs: this.clock.rtt,
      minRttMs: best ? best.rtt : null,
      clockOffsetMs: best ? best.offset : null,
      networkLatencyMs: this.netLatency,
      packets: this.packets,
      badPackets: this.badPackets,
      jitter: this.jb ? this.jb.stats() : null,
      transport: {
        now: this.audioNow,
        datagram: this.link ? { ...this.link.stats } : null,
        spacing: this.link ? this.askedSpacing() : null,
      },
    };
  }

  /** Converts a box clock reading (ns, as in captureNs) to the client clock (ms), once a ping has given the offset. */
  boxToClientMs(boxNs: bigint | number): number | null {
    return this.clock.boxToClientMs(boxNs);
  }

  /** Closes for good (no reconnect). */
  close(): void {
    this.stopped = true;
    const retrying = this.retryTimer !== null;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    const ws = this.ws;
    if (ws) {
      this.detach();
      try {
        ws.close(1000, 'client closed');
      } catch {
        // a socket still connecting may refuse close() on some platforms; it is dropped either way
      }
    }
    this.failPending(new Error('the client was closed'));
    // Also while waiting to retry: the last state event then says no retry follows.
    if (this.state !== 'closed' || retrying || this.connectPending) this.setState({ state: 'closed', attempt: this.attempt, closeCode: 1000, reason: 'client closed', retryInMs: null });
  }

  // --- connection ---------------------------------------------------------------------------------------------

  private open(): void {
    this.attempt++;
    this.lastError = null;
    let ws: WebSocketLike;
    try {
      ws = new this.WS(this.url);
    } catch (err) {
      this.emit('error', { code: 'connect-failed', message: `cannot connect to ${this.url}: ${(err as Error).message}`, url: this.url });
      this.onClosed(1006, (err as Error).message);
      return;
    }
    this.ws = ws;
    ws.binaryType = 'arraybuffer';
    this.setState({ state: 'connecting', attempt: this.attempt });
    ws.onopen = () => {
      ws.send(JSON.stringify({ type: 'hello', protocol: PROTOCOL_VERSION, clientId: this.clientId, ...(this.name ? { name: this.name } : {}) }));
    };
    ws.onmessage = (ev) => this.onFrame(ev.data);
    ws.onerror = (ev) => {
      const reason = errorText(ev);
      this.lastError = reason;
      this.emit('error', { code: 'connect-failed', message: `connection to ${this.url} failed: ${reason}`, url: this.url });
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.detach();
      this.onClosed(ev.code, ev.reason || this.lastError || '');
    };
  }

  private detach(): void {
    const ws = this.ws;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onerror = null;
      ws.onclose = null;
    }
    this.ws = null;
    if (this.pingTimer) clearInterval(this.pingTimer);
    if (this.reportTimer) clearInterval(this.reportTimer);
    this.pingTimer = this.reportTimer = null;
    this.decoder.reset();
    // Forgotten before closing: a data channel reports its own close, which must not count as a fallback.
    const link = this.link;
    this.link = null;
    this.datagramKind = null;
    link?.close();
    // An offer belongs to its connection: the next one makes a new peer.
    while (this.pending.has('webrtc-answer')) this.pending.refuse('webrtc-answer', new Error('the connection closed before the box answered the WebRTC offer'));
    this.audioNow = 'ws';
  }

  private onClosed(code: number, reason: string): void {
    const wasUp = this.welcomedAt === this.welcomedAt && this.now() - this.welcomedAt >= (this.reconnectOpts?.resetAfterMs ?? Infinity);
    this.welcomedAt = NaN;
    this.failPending(new Error(`the connection closed (${code}${reason ? ` ${reason}` : ''})`));
    if (this.stopped) return;
    const fatal = NO_RECONNECT[code];
    if (fatal) {
      this.stopped = true;
      this.failPending(new Error(`the box closed the connection with ${code}`));
      this.emit('error', { code: 'closed', message: `the box closed the connection with ${code}: ${fatal}; not reconnecting`, url: this.url, closeCode: code });
      this.setState({ state: 'closed', attempt: this.attempt, closeCode: code, reason, retryInMs: null });
      return;
    }
    const r = this.reconnectOpts;
    if (wasUp) this.attempt = 0;
    if (!r || this.attempt >= r.maxAttempts) {
      this.stopped = true;
      this.failPending(new Error(`the connection closed (${code}) and the client stopped`));
      if (r) this.emit('error', { code: 'gave-up', message: `gave up on ${this.url} after ${this.attempt} attempts (last close ${code}${reason ? `: ${reason}` : ''})`, url: this.url, closeCode: code });
      this.setState({ state: 'closed', attempt: this.attempt, closeCode: code, reason, retryInMs: null });
      return;
    }
    const delay = Math.min(r.maxMs, r.initialMs * r.factor ** Math.max(0, this.attempt - 1));
    this.setState({ state: 'closed', attempt: this.attempt, closeCode: code, reason, retryInMs: delay });
    if (this.stopped) return; // a 'state' listener called close()
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (!this.stopped) this.open();
    }, delay);
  }

  private setState(ev: StateEvent): void {
    this.state = ev.state;
    this.emit('state', ev);
  }

  // --- incoming -----------------------------------------------------------------------------------------------

  private onFrame(data: unknown): void {
    if (typeof data === 'string') {
      let msg: unknown;
      try {
        msg = JSON.parse(data);
      } catch {
        this.emit('error', { code: 'bad-message', message: `the box sent a text frame that is not JSON: ${JSON.stringify(data.slice(0, 100))}` });
        return;
      }
      if (!msg || typeof msg !== 'object' || Array.isArray(msg) || typeof (msg as BoxMessage).type !== 'string') {
        this.emit('error', { code: 'bad-message', message: `the box sent JSON that is not a message object: ${data.slice(0, 100)}` });
        return;
      }
      this.onMessage(msg as BoxMessage);
      return;
    }
    const arrivalMs = this.now();
    const bytes = data instanceof ArrayBuffer ? new Uint8Array(data) : ArrayBuffer.isView(data) ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : null;
    if (!bytes) {
      this.badPacket(`a binary frame of an unknown type (${Object.prototype.toString.call(data)}); set binaryType "arraybuffer"`);
      return;
    }
    this.decodeInOrder(bytes, arrivalMs);
  }

  /** Packets from the WebSocket and the datagram route share one decode order. */
  private decodeInOrder(bytes: Uint8Array, arrivalMs: number): void {
    if (this.decodeChain) {
      // An earlier packet is still decoding (an async inflater or decoder): keep the order.
      this.decodeChain = this.decodeChain.then(() => this.decodeOne(bytes, arrivalMs));
      return;
    }
    const r = this.decodeOne(bytes, arrivalMs);
    if (r) {
      const chain: Promise<void> = r.finally(() => {
        if (this.decodeChain === chain) this.decodeChain = null;
      });
      this.decodeChain = chain;
    }
  }

  /** Decodes and delivers one packet; returns a Promise only when the decode is asynchronous. */
  private decodeOne(bytes: Uint8Array, arrivalMs: number): Promise<void> | undefined {
    let r: DecodedPacket | Promise<DecodedPacket>;
    try {
      r = this.decoder.decode(bytes);
    } catch (err) {
      this.badPacket((err as Error).message);
      return undefined;
    }
    if (!(r instanceof Promise)) {
      this.deliver(r, arrivalMs);
      return undefined;
    }
    return r.then(
      (p) => this.deliver(p, arrivalMs),
      (err: Error) => this.badPacket(err.message),
    );
  }

  private badPacket(message: string): void {
    this.badPackets++;
    this.emit('error', { code: 'bad-packet', message });
  }

  private deliver(p: DecodedPacket, arrivalMs: number): void {
    this.packets++;
    const h = p.header;
    this.periodMs = (p.frames * 1000) / h.rate;
    const boxMs = this.boxToClientMs(h.captureNs);
    this.netLatency = boxMs === null ? null : arrivalMs - boxMs;
    if (this.jitterOpts) {
      if (!this.jb || this.jb.rate !== h.rate || this.jb.channels !== p.channels) {
        const old = this.jb?.stats();
        this.jb = new JitterBuffer({ ...this.jitterOpts, rate: h.rate, channels: p.channels });
        // Underruns and concealed losses are reported per connection and monotonic: carry the counts across buffers.
        this.underrunBase -= old?.underruns ?? 0;
        this.concealedBase -= old?.lost ?? 0;
      }
      this.jb.push(h.seq, p.samples, arrivalMs, h.captureNs, h.discontinuity);
    }
    this.emit('audio', {
      seq: h.seq,
      samples: p.samples,
      channels: p.channels,
      frames: p.frames,
      rate: h.rate,
      arrivalMs,
      header: h,
      networkLatencyMs: this.netLatency,
      concealedFrames: p.concealedFrames,
    });
  }

  private onMessage(msg: BoxMessage): void {
    switch (msg.type) {
      case 'welcome':
        this.onWelcome(msg as unknown as Welcome);
        break;
      case 'metadata':
        this.emit('metadata', msg);
        break;
      case 'source': {
        const { type: _t, ...src } = msg;
        this.sourceInfo = src as unknown as SourceInfo;
        this.emit('source', this.sourceInfo);
        break;
      }
      case 'subscribed':
        // A choice the box restored on its own after hello answers no request of ours.
        if (msg.restored !== true) this.pending.settle('subscribed', msg);
        // The box's channels are the ones to restore, unless a newer choice of ours is still unanswered.
        if (Array.isArray(msg.channels) && typeof msg.codec === 'string' && !this.pending.choicePending()) {
          this.choice = { mode: 'channels', msg: { type: 'subscribe', channels: msg.channels as number[], codec: msg.codec as ChannelCodec } };
        }
        this.emit('subscribed', { channels: msg.channels as number[], codec: msg.codec as string });
        break;
      case 'mixing':
        if (msg.by !== 'admin' && msg.restored !== true) this.pending.settle('mixing', msg);
        // Our mix as the box now keeps it (also when the admin changed it) is the one to restore, unless a newer
        // choice of ours is still unanswered: then that one is, or a reconnect would send the older mix again.
        if (msg.client === undefined && msg.mix && typeof msg.mix === 'object' && !this.pending.choicePending()) {
          this.choice = { mode: 'mix', msg: { type: 'mix', ...(msg.mix as MixRequest) } };
        }
        this.emit('mixing', msg);
        break;
      case 'unsubscribed':
        this.pending.settle('unsubscribed', msg);
        break;
      case 'webrtc-answer':
        this.pending.settle('webrtc-answer', msg);
        break;
      case 'pong':
        this.onPong(msg);
        break;
      case 'error':
        this.onBoxError(msg);
        break;
      case 'transport':
        if (msg.audio === 'ws' || msg.audio === 'udp' || msg.audio === 'webrtc') {
          const changed = msg.audio !== this.audioNow;
          this.audioNow = msg.audio;
          if (changed) this.emit('transport', { audio: msg.audio, ...(typeof msg.reason === 'string' ? { reason: msg.reason } : {}) });
        }
        break;
    }
    this.emit('message', msg);
  }

  private onWelcome(w: Welcome): void {
    this.welcomeMsg = w;
    this.sourceInfo = w.source;
    this.welcomedAt = this.now();
    this.clock.reset();
    this.underrunBase = this.playback ? this.playback.underruns : this.jb ? this.jb.stats().underruns : 0;
    this.concealedBase = this.playback ? (this.playback.concealed ?? 0) : this.jb ? this.jb.stats().lost : 0;
    const choice = this.choice;
    this.setState({ state: 'open', attempt: this.attempt });
    this.emit('welcome', w);
    // A subscribe or mix made in a 'welcome' listener has been sent already; sending the choice too would repeat it.
    if (this.choice === choice) this.restoreChoice(w);
    this.startDatagrams(w);
    this.ping();
    this.pingTimer = setInterval(() => this.ping(), this.pingIntervalMs);
    this.reportTimer = setInterval(() => this.report(), this.reportIntervalMs);
  }

  /**
   * Audio over UDP when this client was given a socket factory and the box
   * offers it: binds a flow with this connection's token, then asks the box
   * to move the audio there. Otherwise a WebRTC data channel, the same way,
   * when the platform can open one (a browser). Until the datagram route is
   * up (and whenever it falls back) the audio keeps coming over the WebSocket.
   */
  private startDatagrams(w: Welcome): void {
    if (this.udpOpts && w.udp) this.startUdp(w.udp);
    else if (this.webrtcOpts && w.transports?.includes('webrtc')) this.startWebRtc();
    else if (this.udpOpts || this.webrtcOpts) {
      const which = [this.udpOpts ? 'UDP' : null, this.webrtcOpts ? 'WebRTC' : null].filter((x) => x !== null).join(' or ');
      this.emit('transport', { audio: 'ws', reason: `the box offers no ${which} (welcome.transports: ${(w.transports ?? ['ws']).join(', ')})` });
    }
  }

  private startUdp(udp: { port: number; token: string }): void {
    const o = this.udpOpts!;
    let socket;
    try {
      socket = o.createSocket(new URL(this.url).hostname.replace(/^\[|\]$/g, ''), udp.port);
    } catch (err) {
      this.emit('error', { code: 'udp-failed', message: `cannot open a UDP socket to the box: ${(err as Error).message}; audio stays on the WebSocket` });
      return;
    }
    this.datagramKind = 'udp';
    this.link = new DatagramLink({
      socket,
      token: tokenFromHex(udp.token),
      now: this.now,
      onPacket: (bytes) => this.onDatagramPacket(bytes),
      onState: () => undefined,
      onLossBurst: (lost) => this.spacingChooser?.noteBurst(lost, this.now()),
    });
    this.link.start();
    this.askDatagrams();
  }

  /** Offers a data channel over the WebSocket; once it opens, asks the box to move the audio there. */
  private startWebRtc(): void {
    const o = this.webrtcOpts!;
    let channel: { close(): void } | null = null;
    const socket: DatagramSocketLike = { onmessage: null, send: () => undefined, close: () => channel?.close() };
    const link = new DatagramLink({
      socket,
      token: null,
      now: this.now,
      onPacket: (bytes) => this.onDatagramPacket(bytes),
      onState: () => undefined,
      onLossBurst: (lost) => this.spacingChooser?.noteBurst(lost, this.now()),
    });
    this.datagramKind = 'webrtc';
    this.link = link;
    link.start();
    try {
      channel = o.openChannel({
        sendOffer: async (sdp) => String((await this.request('webrtc-answer', { type: 'webrtc-offer', sdp })).sdp),
        onDatagram: (bytes) => {
          if (this.link === link) socket.onmessage?.(bytes);
        },
        onState: (state, reason) => {
          if (this.link !== link) return;
          if (state === 'open') this.askDatagrams();
          else if (state === 'failed' || state === 'closed') this.dropWebRtc(link, `the WebRTC data channel ${state === 'failed' ? 'failed' : 'closed'}: ${reason}`);
        },
      });
    } catch (err) {
      this.dropWebRtc(link, `cannot open a WebRTC data channel: ${(err as Error).message}`);
      this.emit('error', { code: 'webrtc-failed', message: `cannot open a WebRTC data channel: ${(err as Error).message}; audio stays on the WebSocket` });
    }
  }

  /** The data channel is gone: the audio stays on (or goes back to) the WebSocket; the box falls back on its own. */
  private dropWebRtc(link: DatagramLink, reason: string): void {
    if (this.link !== link) return;
    this.link = null;
    this.datagramKind = null;
    link.close();
    this.audioNow = 'ws';
    // The box may not notice a channel gone (a browser's close can be lost with the Wi-Fi): say where to send.
    if (this.ws && this.state === 'open') this.ws.send(JSON.stringify({ type: 'transport', transport: 'ws' }));
    this.emit('transport', { audio: 'ws', reason });
  }

  private askedSpacing(): number {
    const o = this.datagramKind === 'webrtc' ? this.webrtcOpts : this.udpOpts;
    return this.spacingChooser ? this.spacingChooser.spacing : ((o?.spacing as number | undefined) ?? 1);
  }

  private askDatagrams(): void {
    const kind = this.datagramKind;
    if (!kind) return;
    const o = kind === 'webrtc' ? this.webrtcOpts! : this.udpOpts!;
    this.ws?.send(JSON.stringify({ type: 'transport', transport: kind, redundancy: o.redundancy ?? 1, spacing: this.askedSpacing() }));
  }

  /** With spacing 'auto', once a report period: asks the box for the spacing the recent loss bursts call for. */
  private followLossBursts(): void {
    if (!this.spacingChooser || !this.link?.stats.up || this.periodMs === null) return;
    const bufferMs = this.jb ? this.jb.stats().targetMs : this.playback ? this.playback.bufferMs : null;
    const next = this.spacingChooser.look(this.now(), bufferMs === null ? null : bufferMs / this.periodMs);
    if (next !== null) this.askDatagrams();
  }

  private onDatagramPacket(bytes: Uint8Array): void {
    this.decodeInOrder(bytes, this.now());
  }

  /**
   * After a (re)connect, the last choice. The same subscribe again costs no audio, so it is always sent. A mix
   * the box restored is left alone: the engineer may have changed it while this client was away.
   */
  private restoreChoice(w: Welcome): void {
    const c = this.choice;
    if (!c || !this.ws) return;
    if (c.mode === 'mix' && w.restored?.mode === 'mix' && !this.pending.has('mixing')) return;
    this.ws.send(JSON.stringify(c.msg));
  }

  private request(answer: string, msg: object, matches?: (m: BoxMessage) => boolean): Promise<BoxMessage> {
    const p = this.pending.add(answer, msg, matches);
    if (this.ws && this.state === 'open') this.ws.send(JSON.stringify(msg));
    return p;
  }

  private failPending(err: Error): void {
    // Requests wait across a reconnect (they are sent again with the choice); only close() fails them.
    if (this.stopped) this.pending.failAll(err);
  }

  private onBoxError(msg: BoxMessage): void {
    const code = String(msg.code);
    const ref = typeof msg.ref === 'string' ? msg.ref : undefined;
    const message = typeof msg.message === 'string' ? msg.message : code;
    const answer = ref === 'subscribe' ? 'subscribed' : ref === 'mix' ? 'mixing' : ref === 'unsubscribe' ? 'unsubscribed' : ref === 'webrtc-offer' ? 'webrtc-answer' : null;
    if (answer) this.pending.refuse(answer, Object.assign(new Error(`${code}: ${message}`), { code }));
    this.emit('error', { code, message, ...(ref ? { ref } : {}) });
  }

  // --- clock, round trip, report -------------------------------------------------------------------------------

  private ping(): void {
    if (!this.ws || this.state !== 'open') return;
    this.ws.send(JSON.stringify({ type: 'ping', id: ++this.pingId, t: this.now() }));
  }

  private onPong(msg: BoxMessage): void {
    this.clock.onPong(msg, this.now());
  }

  private report(): void {
    if (!this.ws || this.state !== 'open') return;
    this.followLossBursts();
    let bufferMs: number | null = null;
    let underruns = 0;
    if (this.playback) {
      bufferMs = this.playback.bufferMs;
      underruns = this.playback.underruns - this.underrunBase;
    } else if (this.jb) {
      const s = this.jb.stats();
      bufferMs = (s.bufferedFrames * 1000) / this.jb.rate;
      underruns = s.underruns - this.underrunBase;
    }
    if (bufferMs !== null) {
      const b = Math.min(10000, Math.max(0, Math.round(bufferMs * 1000) / 1000));
      const report: Record<string, unknown> = { type: 'report', bufferMs: b, underruns: Math.max(0, Math.round(underruns)) };
      if (this.link) report.recovered = this.link.stats.recovered;
      const concealed = this.playback?.concealed ?? (this.jb ? this.jb.stats().lost : undefined);
      if (concealed !== undefined) report.concealed = Math.max(0, Math.round(concealed - this.concealedBase));
      this.ws.send(JSON.stringify(report));
    }
    this.emit('stats', this.stats());
  }
}

function positiveMs(name: string, v: number): number {
  if (!(v > 0) || !Number.isFinite(v)) throw new RangeError(`StageboxClient ${name} is ${v}; allowed: a finite number of ms above 0`);
  return v;
}

/** Checks a channel list as the box would; returns a copy. */
export function checkChannels(channels: unknown, deviceChannels: number | null): number[] {
  if (!Array.isArray(channels) || channels.length < 1 || channels.length > 64) {
    throw new RangeError(`channels must be a list of 1-64 channel numbers; got ${JSON.stringify(channels)}`);
  }
  const max = deviceChannels ?? 64;
  const seen = new Set<number>();
  for (const c of channels) {
    if (!Number.isInteger(c) || c < 0 || c >= max) {
      throw new RangeError(
        `channel ${JSON.stringify(c)} does not exist; allowed: 0-${max - 1}${deviceChannels !== null ? ` (the device has ${deviceChannels} channels)` : ''}`,
      );
    }
    if (seen.has(c)) throw new RangeError(`channel ${c} is listed twice; each channel may appear once`);
    seen.add(c);
  }
  return [...channels] as number[];
}

function errorText(ev: unknown): string {
  if (ev && typeof ev === 'object') {
    const e = ev as { message?: unknown; error?: { message?: unknown } };
    if (typeof e.message === 'string' && e.message) return e.message;
    if (e.error && typeof e.error.message === 'string') return e.error.message;
  }
  return 'the connection failed (the platform gives no reason)';
}
