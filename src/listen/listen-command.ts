/**
 * `stagebox listen <url> …`: the client library (src/client/) on the command
 * line. Records what the box sends to a WAV file, or plays it through
 * `aplay`, and prints latency and underruns as it goes.
 *
 * The WAV gets the packets as they arrived, in seq order (silence for lost
 * packets), so it is bit-exact with what the box sent. Playback and the
 * printed numbers come from the library's jitter buffer, pulled on a timer at
 * the sample rate, as an audio callback would.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { StageboxClient, type AudioEvent, type BoxMessage, type MixRequest } from '../client/index.js';
import { LISTEN_USAGE, UsageError, parseListenArgs, type ListenOptions } from './listen-args';
import { NodeWebSocket, createNodeOpusDecoder, nodeDatagramSocket, nodeInflateRaw } from './node-platform';
import { weriftDataChannel } from './werift-data-channel';
import { WavWriter, encodePcm } from './wav-writer';

export interface ListenIo {
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream;
}

/** The player pulls this many frames at a time. */
const PULL_FRAMES = 128;
/** More than this much audio waiting in aplay's pipe means aplay stalled: drop rather than grow. */
const MAX_PIPE_MS = 1000;
/** Attempts at the first connection before giving up (0.5 s, then 1 s apart). */
const FIRST_CONNECT_ATTEMPTS = 3;

/** Runs the command; resolves with the exit code. */
export async function listenMain(argv: string[], io: ListenIo = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  let opts: ListenOptions;
  try {
    opts = parseListenArgs(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    io.stderr.write(`stagebox listen: ${err.message}\n\n${LISTEN_USAGE}\n`);
    return 2;
  }
  if (opts.help) {
    io.stdout.write(`${LISTEN_USAGE}\n`);
    return 0;
  }
  return new Listener(opts, io).run();
}

class Listener {
  private readonly client: StageboxClient;
  private exit: (code: number) => void = () => undefined;
  private stopping = false;
  private wav: WavWriter | null = null;
  private aplay: ChildProcess | null = null;
  private aplayErr = '';
  private format: { channels: number; rate: number; bits: 16 | 24 } | null = null;
  private lastSeq = -1;
  /** Packets count from the answer to this listener's own subscribe or mix (a restored choice may stream first). */
  private accepting = false;
  private lostPackets = 0;
  private receivedFrames = 0;
  private pipeDrops = 0;
  private player: NodeJS.Timeout | null = null;
  private progress: NodeJS.Timeout | null = null;
  private t0 = 0;
  private pulled = 0;
  private readonly tty: boolean;

  constructor(
    private readonly opts: ListenOptions,
    private readonly io: ListenIo,
  ) {
    this.tty = io.stdout.isTTY === true;
    this.client = new StageboxClient({
      url: opts.url,
      clientId: opts.clientId,
      name: 'stagebox listen',
      WebSocket: NodeWebSocket,
      inflateRaw: nodeInflateRaw,
      createOpusDecoder: createNodeOpusDecoder,
      jitter: { targetMs: opts.targetMs, maxMs: Math.max(200, opts.targetMs), conceal: opts.conceal },
      ...(opts.transport === 'udp' ? { udp: { createSocket: nodeDatagramSocket(), redundancy: opts.redundancy, spacing: opts.spacing } } : {}),
      ...(opts.transport === 'webrtc' ? { webrtc: { openChannel: weriftDataChannel(), redundancy: opts.redundancy, spacing: opts.spacing } } : {}),
      // A box that restarts is back within seconds; one that never answers is a mistake in the url.
      reconnect: { initialMs: 500, maxMs: 5000, maxAttempts: 8 },
    });
  }

  async run(): Promise<number> {
    const done = new Promise<number>((resolve) => (this.exit = resolve));
    const onSignal = (): void => void this.stop(0);
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    this.client.on('error', (e) => {
      if (!this.stopping) this.line(`stagebox listen: ${e.message}`, true);
      if (e.code === 'gave-up' || e.code === 'closed') void this.stop(1);
    });
    this.client.on('audio', (a) => this.onAudio(a));
    this.client.on('transport', (t) => {
      if (!this.stopping) this.line(`audio over ${t.audio === 'ws' ? 'the WebSocket' : t.audio === 'udp' ? 'UDP' : t.audio === 'webrtc' ? 'a WebRTC data channel' : t.audio}${t.reason ? ` (${t.reason})` : ''}`, false);
    });
    // A box that never answered is most likely a wrong url: give up sooner than on one that went away.
    let welcomed = false;
    this.client.on('welcome', () => (welcomed = true));
    this.client.on('state', (st) => {
      if (!welcomed && st.state === 'closed' && st.attempt >= FIRST_CONNECT_ATTEMPTS && !this.stopping) {
        this.line(`stagebox listen: no answer from ${this.opts.url} after ${st.attempt} attempts; giving up`, true);
        void this.stop(1);
      }
    });
    try {
      const welcome = await Promise.race([this.client.connect(), done.then(() => null)]);
      if (!welcome) return done;
      const rate = welcome.source.rate;
      if (this.opts.channels) {
        const n = welcome.source.channels;
        const beyond = n === null ? undefined : this.opts.channels.find((c) => c > n);
        if (beyond !== undefined) {
          throw new UsageError(`--channels ${JSON.stringify(this.opts.channelsText)}: input ${beyond} does not exist; the box has ${n} inputs (allowed: 1-${n})`);
        }
        // The output is ready before the first packet can arrive.
        await this.openOutput(this.opts.channels.length, rate);
        await this.client.subscribe({ channels: this.opts.channels.map((c) => c - 1), codec: this.opts.codec as 'pcm16' });
        this.accepting = true;
      } else {
        await this.hearMixOf(this.opts.mix!, rate);
        this.accepting = true;
      }
      this.line(`listening to ${this.opts.url} (${this.describeChoice()}), ${this.opts.out ? `recording to ${this.opts.out}` : `playing on ${this.opts.alsa}`}`, false);
      this.progress = setInterval(() => this.printProgress(), this.tty ? 250 : 1000);
    } catch (err) {
      if (this.stopping) return done;
      const usage = err instanceof UsageError || (err as { code?: string }).code !== undefined;
      this.line(`stagebox listen: ${(err as Error).message}`, true);
      void this.stop(usage ? 2 : 1);
    }
    return done;
  }

  private describeChoice(): string {
    return this.opts.channels ? `inputs ${this.opts.channelsText}, ${this.opts.codec}` : `the mix of ${JSON.stringify(this.opts.mix)}, ${this.opts.codec}`;
  }

  /** Admin: finds the client by id or name, reads its mix and asks for the same for this listener. */
  private async hearMixOf(name: string, rate: number | null): Promise<BoxMessage> {
    await this.ask({ type: 'auth', token: this.opts.token }, 'auth-ok');
    const list = await this.ask({ type: 'list-clients' }, 'clients');
    const all = [...((list.connected as { clientId: string; name: string }[]) ?? []), ...((list.saved as { clientId: string; name: string }[]) ?? [])];
    const hit = all.find((c) => c.clientId === name) ?? all.find((c) => c.name === name);
    if (!hit) {
      const known = [...new Set(all.filter((c) => c.clientId !== this.opts.clientId).map((c) => (c.name ? `${c.clientId} (${c.name})` : c.clientId)))];
      throw new UsageError(`--mix ${JSON.stringify(name)}: the box knows no client of that id or name; known: ${known.length ? known.join(', ') : 'none'}`);
    }
    const state = await this.ask({ type: 'get-mix', client: hit.clientId }, 'mix-state');
    if (!state.mix) throw new UsageError(`--mix ${JSON.stringify(name)}: client ${hit.clientId} has no mix (it streams raw channels or nothing)`);
    const mix = { ...(state.mix as MixRequest), codec: this.opts.codec as MixRequest['codec'] };
    if (mix.codec !== 'opus') delete mix.opus;
    await this.openOutput(mix.output === 'mono' ? 1 : 2, rate);
    return this.client.mix(mix);
  }

  /** Sends a control message; resolves with the answer of type `answer`, rejects on an error about it. */
  private ask(msg: { type: string; [k: string]: unknown }, answer: string): Promise<BoxMessage> {
    return new Promise((resolve, reject) => {
      const off = this.client.on('message', (m) => {
        if (m.type === answer) {
          off();
          resolve(m);
        } else if (m.type === 'error' && m.ref === msg.type) {
          off();
          reject(Object.assign(new Error(`${msg.type}: the box answered ${String(m.code)}: ${String(m.message)}`), { code: m.code }));
        }
      });
      this.client.send(msg);
    });
  }

  private async openOutput(channels: number, rate: number | null): Promise<void> {
    if (rate === null) throw new Error('the box does not know its sample rate yet (no capture device?); try again when it captures');
    const bits: 16 | 24 = this.opts.codec === 'pcm24' ? 24 : 16;
    this.format = { channels, rate, bits };
    if (this.opts.out) {
      this.wav = await WavWriter.create(this.opts.out, bits, channels, rate);
      return;
    }
    const args = ['-q', '-D', this.opts.alsa!, '-t', 'raw', '-f', bits === 24 ? 'S24_3LE' : 'S16_LE', '-c', String(channels), '-r', String(rate)];
    const aplay = spawn('aplay', args, { stdio: ['pipe', 'ignore', 'pipe'] });
    this.aplay = aplay;
    aplay.stderr!.setEncoding('utf8').on('data', (t: string) => (this.aplayErr += t));
    aplay.stdin!.on('error', () => undefined); // EPIPE when aplay exits: reported by 'exit' below
    aplay.on('error', (err) => {
      this.line(`stagebox listen: cannot run aplay: ${err.message} (install alsa-utils)`, true);
      void this.stop(1);
    });
    aplay.on('exit', (code, signal) => {
      if (this.stopping) return;
      this.line(`stagebox listen: aplay -D ${this.opts.alsa} exited (${code ?? signal}): ${this.aplayErr.trim() || 'no message'}`, true);
      void this.stop(1);
    });
  }

  private onAudio(a: AudioEvent): void {
    const f = this.format;
    if (!f || this.stopping || !this.accepting || a.header.codec !== this.opts.codec) return;
    if (a.channels !== f.channels || a.rate !== f.rate) {
      this.line(`stagebox listen: the stream changed to ${a.channels} channels at ${a.rate} Hz (was ${f.channels} at ${f.rate} Hz); stopping`, true);
      void this.stop(1);
      return;
    }
    if (!this.player) this.startPlayer();
    const limit = this.opts.seconds === null ? Infinity : Math.round(this.opts.seconds * f.rate);
    // Lost packets are silence in the recording, so the file keeps time (unless an Opus decoder concealed them already).
    if (this.lastSeq >= 0 && a.concealedFrames === 0) {
      const missing = (a.seq - this.lastSeq - 1) >>> 0;
      if (missing > 0 && missing * a.frames <= f.rate) {
        this.lostPackets += missing;
        const gap = Math.min(missing * a.frames, limit - this.receivedFrames);
        this.wav?.appendSilence(gap);
        this.receivedFrames += gap;
      }
    }
    this.lastSeq = a.seq;
    const take = Math.min(a.frames, limit - this.receivedFrames);
    if (take > 0) {
      this.wav?.append(a.samples, 0, take);
      this.receivedFrames += take;
    }
    if (this.receivedFrames >= limit) void this.stop(0);
  }

  /** Pulls the jitter buffer at the sample rate, as an audio callback would; feeds aplay when playing. */
  private startPlayer(): void {
    const f = this.format!;
    const out = new Float32Array(PULL_FRAMES * f.channels);
    this.t0 = performance.now();
    this.player = setInterval(() => {
      const now = performance.now();
      const due = Math.floor((((now - this.t0) * f.rate) / 1000 - this.pulled) / PULL_FRAMES);
      for (let i = 0; i < due; i++) {
        // The audio clock of this pull (as an audio callback's), not the timer's: a tick that pulls two periods
        // would otherwise show the jitter buffer the second one as due at once.
        this.client.pull(out, this.t0 + (this.pulled * 1000) / f.rate);
        this.pulled += PULL_FRAMES;
        const stdin = this.aplay?.stdin;
        if (!stdin || !stdin.writable) continue;
        if (stdin.writableLength > (MAX_PIPE_MS / 1000) * f.rate * f.channels * (f.bits / 8)) {
          this.pipeDrops++;
          continue;
        }
        stdin.write(encodePcm(out, f.bits));
      }
    }, 5);
  }

  private statusText(): string {
    const s = this.client.stats();
    const j = s.jitter;
    const f = this.format;
    const secs = f ? this.receivedFrames / f.rate : 0;
    const fmt = (v: number | null | undefined, d = 1): string => (v === null || v === undefined ? '-' : v.toFixed(d));
    const total = j && s.networkLatencyMs !== null ? s.networkLatencyMs + j.latencyMs : null;
    // Played minutes, for the rate of audible events (what a musician hears as dropouts).
    const minutes = f ? (this.pulled / f.rate) / 60 : 0;
    return (
      `${secs.toFixed(1)} s  latency ${fmt(total)} ms (network ${fmt(s.networkLatencyMs)} + buffer ${fmt(j?.latencyMs)})` +
      `  target ${fmt(j?.targetMs)} ms  underruns ${j?.underruns ?? 0}  lost ${this.lostPackets}` +
      `  late ${j?.late ?? 0}  drift ${j ? `${j.driftPpm >= 0 ? '+' : ''}${j.driftPpm.toFixed(0)}` : '-'} ppm  rtt ${fmt(s.rttMs, 2)} ms` +
      // Added by issue #12, after the fields scripts already read: concealed losses (the other audible event),
      // concealed audio, packets recovered after their gap was seen, time-stretching both ways, events a minute.
      `  losses ${j?.concealedLosses ?? 0}  concealed ${(j?.concealedMs ?? 0).toFixed(0)} ms  recovered ${j?.recoveredLate ?? 0}` +
      `  accel ${(j?.acceleratedMs ?? 0).toFixed(1)} ms  expand ${(j?.expandedMs ?? 0).toFixed(1)} ms` +
      `  events/min ${minutes > 0 ? ((j?.audibleEvents ?? 0) / minutes).toFixed(1) : '0.0'}` +
      // Added by issue #13: where the audio comes from, and what redundant copies repaired.
      `  transport ${s.transport.now}${s.transport.spacing !== null && s.transport.now !== 'ws' ? ` spacing ${s.transport.spacing}` : ''}` +
      `  repaired ${s.transport.datagram?.recovered ?? 0}` +
      (this.pipeDrops ? `  output drops ${this.pipeDrops}` : '')
    );
  }

  private printProgress(): void {
    if (this.tty) this.io.stdout.write(`\r\x1b[K${this.statusText()}`);
    else this.io.stdout.write(`${this.statusText()}\n`);
  }

  /** A message line; on a terminal it goes above the progress line. */
  private line(text: string, error: boolean): void {
    if (this.tty && this.progress) this.io.stdout.write('\r\x1b[K');
    (error ? this.io.stderr : this.io.stdout).write(`${text}\n`);
  }

  private async stop(code: number): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    if (this.player) clearInterval(this.player);
    if (this.progress) clearInterval(this.progress);
    // Read before closing: a closed client's audio comes over nothing.
    const last = this.format && this.receivedFrames > 0 ? this.statusText() : null;
    this.client.close();
    if (this.tty && this.progress) this.io.stdout.write('\n');
    if (last !== null) this.line(`done: ${last}`, false);
    try {
      if (this.wav) {
        await this.wav.finish();
        this.line(`wrote ${this.wav.frames} frames (${(this.wav.frames / this.wav.rate).toFixed(3)} s, ${this.wav.channels} channels, ${this.wav.bits}-bit, ${this.wav.rate} Hz) to ${this.wav.path}; ${this.lostPackets} packets lost`, false);
      }
      if (this.aplay) await this.endAplay();
    } catch (err) {
      this.line(`stagebox listen: ${(err as Error).message}`, true);
      code = 1;
    }
    this.exit(code);
  }

  /** Lets aplay play what it has, bounded: killed after 2 s. */
  private endAplay(): Promise<void> {
    const aplay = this.aplay!;
    if (aplay.exitCode !== null || aplay.signalCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => aplay.kill('SIGKILL'), 2000);
      aplay.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      aplay.stdin!.end();
    });
  }
}
