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
import { JitterBuffer, type JitterBufferOptions, type JitterBufferStats } from './jitter-buffer.js';
import { PacketDecoder, type CreateOpusDecoder, type DecodedPacket, type InflateRaw, type PacketHeader } from './packet-decoder.js';
import { TypedEmitter } from './typed-emitter.js';

export const PROTOCOL_VERSION = 1;
export const CHANNEL_CODECS = ['pcm16', 'pcm24', 'deflate'] as const;
export const MIX_CODECS = ['pcm16', 'pcm24', 'opus'] as const;
export type ChannelCodec = (typeof CHANNEL_CODECS)[number];
export type MixCodec = (typeof MIX_CODECS)[number];

/** The part of the browser WebSocket API the client uses; `ws` offers it too. */
export interface WebSocketLike {
  binaryType: string;
  readonly readyState: number;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}
export type WebSocketConstructor = new (url: string) => WebSocketLike;

/** The capture source as the box describes it (welcome.source, `source`). */
export interface SourceInfo {
  state: string;
  kind: string;
  device: string;
  channels: number | null;
  rate: number | null;
  periodFrames: number;
  format: string | null;
  /** The engineer is recording a take (absent from boxes before recording existed). */
  recording?: boolean;
}

export interface Welcome {
  type: 'welcome';
  protocol: number;
  version: string;
  clientId: string;
  source: SourceInfo;
  codecs: string[];
  mixCodecs: string[];
  role: string;
  boxNs: string;
  restored: { mode: 'channels' | 'mix'; codec: string } | null;
}

/** Any JSON message from the box; fields the client does not know are kept. */
export interface BoxMessage {
  type: string;
  [key: string]: unknown;
}

export interface SubscribeRequest {
  /** 0-based device channels, 1-64 of them, each once; the packets carry them in this order. */
  channels: number[];
  /** Default "pcm16". */
  codec?: ChannelCodec;
}

/** The protocol's `mix` message without `type` (docs/protocol.md, section 3.1 "mix"). */
export interface MixRequest {
  codec?: MixCodec;
  output?: 'stereo' | 'mono';
  masterDb?: number | null;
  channels: { ch: number; gainDb?: number | null; pan?: number; mute?: boolean; solo?: boolean }[];
  groups?: { name: string; gainDb?: number | null; mute?: boolean }[];
  limiter?: { enabled?: boolean; ceilingDb?: number };
  opus?: { frameMs?: number; bitrateKbps?: number };
}

export interface AudioEvent {
  seq: number;
  /** Interleaved, frames × channels, in [-1, 1); a new array per packet. */
  samples: Float32Array;
  channels: number;
  frames: number;
  rate: number;
  /** Client clock when the packet arrived, ms. */
  arrivalMs: number;
  header: PacketHeader;
  /** Capture (box) to arrival, ms, once a ping has given the clock offset; for opus includes the frame fill. */
  networkLatencyMs: number | null;
  /** Opus: frames of the decoder's own loss concealment in front of the packet's audio (0 without one: a jitter buffer conceals the seq gap). */
  concealedFrames: number;
}

/** What went wrong; `code` is the box's error code, or one of the client's own (below). */
export interface ClientError {
  /**
   * The box's `error` codes (docs/protocol.md 3.2), or: `connect-failed` (the socket failed), `closed` (the box
   * closed the connection with a code after which the client does not reconnect), `gave-up` (reconnect attempts
   * used up), `bad-packet` (a packet that does not decode), `bad-message` (a text frame that is not a JSON object).
   */
  code: string;
  message: string;
  /** The `type` of the message that caused a box error, when the box said. */
  ref?: string;
  url?: string;
  closeCode?: number;
}

export type ConnectionState = 'connecting' | 'open' | 'closed';
export interface StateEvent {
  state: ConnectionState;
  /** Connection attempts since the last one that stayed up (1 = first try). */
  attempt: number;
  /** For 'closed': the close code and reason, and when the next attempt is (null: none). */
  closeCode?: number;
  reason?: string;
  retryInMs?: number | null;
}

export interface ClientStats {
  /** Last ping round trip, ms. */
  rttMs: number | null;
  /** Smallest round trip in the last 30 s, ms: the ping the offset comes from. */
  minRttMs: number | null;
  /** box ms − client ms: client time = box time − offset. */
  clockOffsetMs: number | null;
  /** Capture to arrival of the last packet, ms. */
  networkLatencyMs: number | null;
  packets: number;
  badPackets: number;
  /** The internal jitter buffer (option `jitter`), if any. */
  jitter: JitterBufferStats | null;
}

export interface ReconnectOptions {
  /** First retry after this long, ms; default 500. */
  initialMs?: number;
  /** Longest wait between attempts, ms; default 5000. */
  maxMs?: number;
  /** Each failed attempt multiplies the wait by this; default 2. */
  factor?: number;
  /** Give up after this many failed attempts in a row; default Infinity. */
  maxAttempts?: number;
  /** A connection that stayed up this long resets the backoff, ms; default 5000. */
  resetAfterMs?: number;
}

export interface StageboxClientOptions {
  /** ws:// or wss:// URL of the box, such as "ws://stagebox.local:5100/". */
  url: string;
  /** Stable per installation: 1-64 characters from A-Z a-z 0-9 . _ : - */
  clientId: string;
  /** For humans (the engineer's client list), at most 64 characters. */
  name?: string;
  /** Default globalThis.WebSocket. */
  WebSocket?: WebSocketConstructor;
  /** Needed for the deflate codec. */
  inflateRaw?: InflateRaw;
  /** Needed for opus mixes. */
  createOpusDecoder?: CreateOpusDecoder;
  /** Keep an internal jitter buffer fed with the audio (read it with pull()); off by default. */
  jitter?: Omit<JitterBufferOptions, 'rate' | 'channels'> | false;
  /** Reconnect with backoff (default on); false: never. */
  reconnect?: ReconnectOptions | false;
  /** ms between pings; default 2000. */
  pingIntervalMs?: number;
  /** ms between `report` messages (and 'stats' events); default 1000. */
  reportIntervalMs?: number;
  /** Monotonic client clock, ms; default performance.now(). */
  now?: () => number;
}

export interface ClientEvents {
  welcome: Welcome;
  metadata: BoxMessage;
  source: SourceInfo;
  subscribed: { channels: number[]; codec: string };
  mixing: BoxMessage;
  audio: AudioEvent;
  error: ClientError;
  state: StateEvent;
  stats: ClientStats;
  /** Every JSON message from the box, including the ones above. */
  message: BoxMessage;
}

const CLIENT_ID = /^[A-Za-z0-9._:-]{1,64}$/;
/** Close codes after which reconnecting would not help (docs/protocol.md section 4). */
const NO_RECONNECT: Record<number, string> = {
  1003: 'the box refused a binary frame from this client',
  1009: 'a message from this client was too large for the box',
  4002: "the box does not speak this client's protocol version; update the app",
  4010: 'another connection with the same clientId took over',
};
const OFFSET_WINDOW_MS = 30000;

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
  /** Requests waiting for their answer; `matches` tells the answer from a restored choice's message of the same type. */
  private pending: { type: string; msg: object; matches: (m: BoxMessage) => boolean; resolve: (m: BoxMessage) => void; reject: (e: Error) => void }[] = [];

  private pingId = 0;
  private rtt: number | null = null;
  private offsets: { at: number; rtt: number; offset: number }[] = [];
  private netLatency: number | null = null;
  private packets = 0;
  private badPackets = 0;
  private decodeChain: Promise<void> | null = null;

  private jb: JitterBuffer | null = null;
  private playback: { bufferMs: number; underruns: number } | null = null;
  private underrunBase = 0;

  constructor(opts: StageboxClientOptions) {
    super();
    if (typeof opts.url !== 'string' || !/^wss?:\/\/[^/\s]+/i.test(opts.url)) {
      throw new TypeError(`StageboxClient url is ${JSON.stringify(opts.url)}; allowed: a ws:// or wss:// URL such as "ws://stagebox.local:5100/"`);
    }
    if (typeof opts.clientId !== 'string' || !CLIENT_ID.test(opts.clientId)) {
      throw new TypeError(`StageboxClient clientId is ${JSON.stringify(opts.clientId)}; allowed: 1-64 characters from A-Z a-z 0-9 . _ : -`);
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
  setPlaybackStats(stats: { bufferMs: number; underruns: number }): void {
    this.playback = { bufferMs: stats.bufferMs, underruns: stats.underruns };
  }

  /** Fills `out` from the internal jitter buffer (silence without one). Call from the playback clock. */
  pull(out: Float32Array, nowMs = this.now()): void {
    if (this.jb) this.jb.pull(out, nowMs);
    else out.fill(0);
  }

  stats(): ClientStats {
    const best = this.bestOffset();
    return {
      rttMs: this.rtt,
      minRttMs: best ? best.rtt : null,
      clockOffsetMs: best ? best.offset : null,
      networkLatencyMs: this.netLatency,
      packets: this.packets,
      badPackets: this.badPackets,
      jitter: this.jb ? this.jb.stats() : null,
    };
  }

  /** Converts a box clock reading (ns, as in captureNs) to the client clock (ms), once a ping has given the offset. */
  boxToClientMs(boxNs: bigint | number): number | null {
    const best = this.bestOffset();
    return best ? Number(boxNs) / 1e6 - best.offset : null;
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
    const boxMs = this.boxToClientMs(h.captureNs);
    this.netLatency = boxMs === null ? null : arrivalMs - boxMs;
    if (this.jitterOpts) {
      if (!this.jb || this.jb.rate !== h.rate || this.jb.channels !== p.channels) {
        const old = this.jb?.stats().underruns ?? 0;
        this.jb = new JitterBuffer({ ...this.jitterOpts, rate: h.rate, channels: p.channels });
        // Underruns are reported per connection and monotonic: carry the count across buffers.
        this.underrunBase -= old;
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
        if (msg.restored !== true) this.settle('subscribed', msg);
        // The box's channels are the ones to restore, unless a newer choice of ours is still unanswered.
        if (Array.isArray(msg.channels) && typeof msg.codec === 'string' && !this.choicePending()) {
          this.choice = { mode: 'channels', msg: { type: 'subscribe', channels: msg.channels as number[], codec: msg.codec as ChannelCodec } };
        }
        this.emit('subscribed', { channels: msg.channels as number[], codec: msg.codec as string });
        break;
      case 'mixing':
        if (msg.by !== 'admin' && msg.restored !== true) this.settle('mixing', msg);
        // Our mix as the box now keeps it (also when the admin changed it) is the one to restore, unless a newer
        // choice of ours is still unanswered: then that one is, or a reconnect would send the older mix again.
        if (msg.client === undefined && msg.mix && typeof msg.mix === 'object' && !this.choicePending()) {
          this.choice = { mode: 'mix', msg: { type: 'mix', ...(msg.mix as MixRequest) } };
        }
        this.emit('mixing', msg);
        break;
      case 'unsubscribed':
        this.settle('unsubscribed', msg);
        break;
      case 'pong':
        this.onPong(msg);
        break;
      case 'error':
        this.onBoxError(msg);
        break;
    }
    this.emit('message', msg);
  }

  private onWelcome(w: Welcome): void {
    this.welcomeMsg = w;
    this.sourceInfo = w.source;
    this.welcomedAt = this.now();
    this.offsets = [];
    this.rtt = null;
    this.underrunBase = this.playback ? this.playback.underruns : this.jb ? this.jb.stats().underruns : 0;
    const choice = this.choice;
    this.setState({ state: 'open', attempt: this.attempt });
    this.emit('welcome', w);
    // A subscribe or mix made in a 'welcome' listener has been sent already; sending the choice too would repeat it.
    if (this.choice === choice) this.restoreChoice(w);
    this.ping();
    this.pingTimer = setInterval(() => this.ping(), this.pingIntervalMs);
    this.reportTimer = setInterval(() => this.report(), this.reportIntervalMs);
  }

  /**
   * After a (re)connect, the last choice. The same subscribe again costs no audio, so it is always sent. A mix
   * the box restored is left alone: the engineer may have changed it while this client was away.
   */
  private restoreChoice(w: Welcome): void {
    const c = this.choice;
    if (!c || !this.ws) return;
    if (c.mode === 'mix' && w.restored?.mode === 'mix' && !this.pending.some((q) => q.type === 'mixing')) return;
    this.ws.send(JSON.stringify(c.msg));
  }

  /** A subscribe, mix or unsubscribe of ours the box has not answered yet. */
  private choicePending(): boolean {
    return this.pending.some((q) => q.type === 'subscribed' || q.type === 'mixing' || q.type === 'unsubscribed');
  }

  private request(answer: string, msg: object, matches: (m: BoxMessage) => boolean = () => true): Promise<BoxMessage> {
    const p = new Promise<BoxMessage>((resolve, reject) => {
      this.pending.push({ type: answer, msg, matches, resolve, reject });
    });
    // A caller that does not await must not get an unhandled rejection; one that does still sees it.
    p.catch(() => undefined);
    if (this.ws && this.state === 'open') this.ws.send(JSON.stringify(msg));
    return p;
  }

  private settle(type: string, msg: BoxMessage): void {
    let i = this.pending.findIndex((q) => q.type === type && q.matches(msg));
    if (i < 0) return;
    if (type === 'mixing' && msg.mix && typeof msg.mix === 'object') {
      // The box coalesces mix messages that come close together and answers only the last of them. The answer
      // settles every mix up to the newest one it shows; without this a dragged fader would leave its merged
      // requests pending until close().
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

  private failPending(err: Error): void {
    // Requests wait across a reconnect (they are sent again with the choice); only close() fails them.
    if (!this.stopped) return;
    for (const q of this.pending.splice(0)) q.reject(err);
  }

  private onBoxError(msg: BoxMessage): void {
    const code = String(msg.code);
    const ref = typeof msg.ref === 'string' ? msg.ref : undefined;
    const message = typeof msg.message === 'string' ? msg.message : code;
    const answer = ref === 'subscribe' ? 'subscribed' : ref === 'mix' ? 'mixing' : ref === 'unsubscribe' ? 'unsubscribed' : null;
    if (answer) {
      const i = this.pending.findIndex((q) => q.type === answer);
      if (i >= 0) this.pending.splice(i, 1)[0]!.reject(Object.assign(new Error(`${code}: ${message}`), { code }));
    }
    this.emit('error', { code, message, ...(ref ? { ref } : {}) });
  }

  // --- clock, round trip, report -------------------------------------------------------------------------------

  private ping(): void {
    if (!this.ws || this.state !== 'open') return;
    this.ws.send(JSON.stringify({ type: 'ping', id: ++this.pingId, t: this.now() }));
  }

  private onPong(msg: BoxMessage): void {
    const t = msg.t;
    if (typeof t !== 'number' || typeof msg.boxNs !== 'string') return;
    const now = this.now();
    const rtt = now - t;
    this.rtt = rtt;
    const boxMs = Number(BigInt(msg.boxNs)) / 1e6;
    this.offsets.push({ at: now, rtt, offset: boxMs - (t + rtt / 2) });
    while (this.offsets.length > 0 && now - this.offsets[0]!.at > OFFSET_WINDOW_MS) this.offsets.shift();
  }

  private bestOffset(): { rtt: number; offset: number } | null {
    let best: { rtt: number; offset: number } | null = null;
    for (const o of this.offsets) if (!best || o.rtt < best.rtt) best = o;
    return best;
  }

  private report(): void {
    if (!this.ws || this.state !== 'open') return;
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
      this.ws.send(JSON.stringify({ type: 'report', bufferMs: b, underruns: Math.max(0, Math.round(underruns)) }));
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

function omitType(msg: object): object {
  const { type: _type, ...rest } = msg as Record<string, unknown>;
  return rest;
}

/** True when every field `want` gives has the same value in `got` (which may have more: the box fills defaults in). */
function fieldsMatch(want: unknown, got: unknown): boolean {
  if (Array.isArray(want)) return Array.isArray(got) && got.length === want.length && want.every((w, k) => fieldsMatch(w, got[k]));
  if (want !== null && typeof want === 'object') {
    if (got === null || typeof got !== 'object') return false;
    return Object.entries(want).every(([k, v]) => fieldsMatch(v, (got as Record<string, unknown>)[k]));
  }
  return want === got;
}
