/**
 * Command line of `stagebox listen`: parsed and checked once, here. Every
 * problem is a UsageError (exit 2) naming the option, the value and what is
 * allowed.
 */
import { CHANNEL_CODECS, MIX_CODECS, type PacketCodec } from '../protocol/codecs';
import { CLIENT_ID_MAX_LENGTH, clientIdProblem } from '../protocol/client-id';
import { CommandLineError, parseCommandLine } from '../config/command-line';
import os from 'node:os';

export const LISTEN_USAGE = `Usage: stagebox listen <url> [--channels LIST | --mix CLIENT] [--codec CODEC]
                       [--seconds N] (--out FILE.wav | --alsa DEVICE) [options]

Receives a stream from a stagebox and records it to a WAV file or plays it on
an ALSA device, printing latency and underruns as it goes (a progress line on
a terminal, one plain line a second otherwise).

  <url>              the box, such as ws://stagebox.local:5100/
  --channels LIST    inputs to receive, numbered from 1 as on the interface:
                     "1-4,7" (default 1-2)
  --mix CLIENT       instead of raw channels, the personal mix of another client
                     (its clientId or its name, as on the dashboard), rendered
                     by the box; needs the admin token (--token)
  --codec CODEC      channels: pcm16 (default), pcm24 or deflate;
                     a mix: pcm16 (default), pcm24 or opus
  --seconds N        stop after N seconds of audio (default: until Ctrl-C)
  --out FILE.wav     record: 24-bit PCM for pcm24, 16-bit PCM for the others
                     (bit-exact with what the box sent; silence for lost packets)
  --alsa DEVICE      play through \`aplay -D DEVICE\` (e.g. default or plughw:1)
  --client-id ID     the stable id this listener says hello with
                     (default stagebox-listen-<hostname>)
  --token TOKEN      the box's admin token (for --mix)
  --target-ms MS     jitter buffer target until it has watched the link
                     for 5 s (default 10); then it follows the link
  --conceal MODE     what --alsa plays for a lost packet or an underrun:
                     waveform (default: the audio before it repeated, fading
                     out; the latency held by time-stretching) or silence
                     (hear every dropout as it is; frame slips only, so every
                     frame played is one the box sent)
  --transport T      how the audio comes: udp (default: datagrams, no
                     head-of-line blocking on Wi-Fi; the WebSocket where the
                     box offers no UDP), webrtc (datagrams over a WebRTC data
                     channel, as the listener page gets them) or ws (the
                     WebSocket only)
  --redundancy N     udp, webrtc: copies of earlier packets in each datagram,
                     0-3 (default 1)
  --spacing D        udp, webrtc: how far back the copies reach, in packets: auto
                     (default: follows the loss bursts it sees, within what
                     the jitter buffer holds) or 1-8
  -h, --help         show this help and exit

Exit codes: 0 done (or stopped with Ctrl-C), 1 connection or device failure,
2 invalid usage.`;

export class UsageError extends Error {
  override name = 'UsageError';
}

export interface ListenOptions {
  url: string;
  /** 1-based input numbers as typed; the wire uses them minus one. */
  channels: number[] | null;
  /** The text of --channels, for messages. */
  channelsText: string | null;
  mix: string | null;
  codec: PacketCodec;
  seconds: number | null;
  out: string | null;
  alsa: string | null;
  clientId: string;
  token: string | null;
  targetMs: number;
  conceal: 'waveform' | 'silence';
  transport: 'ws' | 'udp' | 'webrtc';
  redundancy: number;
  spacing: number | 'auto';
  help: boolean;
}


export function defaultClientId(): string {
  return `stagebox-listen-${os.hostname()}`.replace(/[^A-Za-z0-9._:-]/g, '-').slice(0, CLIENT_ID_MAX_LENGTH);
}

/** Parses "1-4,7" (1-based inputs, ascending ranges, each input once) into [1, 2, 3, 4, 7]. */
export function parseChannelList(text: string): number[] {
  const out: number[] = [];
  const bad = (why: string): UsageError => new UsageError(`--channels ${JSON.stringify(text)}: ${why}; allowed: inputs from 1, as a list of numbers and ascending ranges such as "1-4,7"`);
  if (text.trim() === '') throw bad('is empty');
  for (const part of text.split(',')) {
    const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(part);
    if (!m) throw bad(`${JSON.stringify(part)} is not a number or a range`);
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    if (a < 1 || b < 1) throw bad('input 0 does not exist (inputs count from 1, as on the interface)');
    if (b < a) throw bad(`the range ${a}-${b} runs backwards`);
    if (b > 64) throw bad(`input ${b} is beyond 64, the most a box has`);
    for (let c = a; c <= b; c++) {
      if (out.includes(c)) throw bad(`input ${c} is listed twice`);
      out.push(c);
    }
  }
  if (out.length > 64) throw bad(`${out.length} inputs; at most 64`);
  return out;
}

export function parseListenArgs(argv: string[]): ListenOptions {
  const o: ListenOptions = {
    url: '',
    channels: null,
    channelsText: null,
    mix: null,
    codec: 'pcm16',
    seconds: null,
    out: null,
    alsa: null,
    clientId: defaultClientId(),
    token: process.env.STAGEBOX_ADMIN_TOKEN || null,
    targetMs: 10,
    conceal: 'waveform',
    transport: 'udp',
    redundancy: 1,
    spacing: 'auto',
    help: false,
  };
  let parsed;
  try {
    parsed = parseCommandLine(argv, {
      options: {
        help: { type: 'boolean', short: 'h' },
        channels: { type: 'string' },
        mix: { type: 'string' },
        codec: { type: 'string' },
        seconds: { type: 'string' },
        out: { type: 'string' },
        alsa: { type: 'string' },
        'client-id': { type: 'string' },
        token: { type: 'string' },
        'target-ms': { type: 'string' },
        conceal: { type: 'string' },
        transport: { type: 'string' },
        redundancy: { type: 'string' },
        spacing: { type: 'string' },
      },
      positionals: true,
      allowed: '--channels, --mix, --codec, --seconds, --out, --alsa, --client-id, --token, --target-ms, --conceal, --transport, --redundancy, --spacing, --help',
      hint: valueHint,
    });
  } catch (err) {
    if (err instanceof CommandLineError) throw new UsageError(err.message);
    throw err;
  }
  const v = parsed.values;
  const urls = parsed.positionals;
  o.help = v.help ?? false;
  if (v.channels !== undefined) {
    o.channelsText = v.channels;
    o.channels = parseChannelList(v.channels);
  }
  if (v.mix !== undefined) {
    if (v.mix.trim() === '') throw new UsageError(`--mix: got an empty name; ${valueHint('--mix')}`);
    o.mix = v.mix;
  }
  const codecGiven = v.codec ?? null;
  if (v.seconds !== undefined) {
    const n = Number(v.seconds);
    if (!/^\s*\d*\.?\d+\s*$/.test(v.seconds) || !(n > 0) || n > 86400) throw new UsageError(`--seconds ${JSON.stringify(v.seconds)}: ${valueHint('--seconds')}`);
    o.seconds = n;
  }
  if (v.out !== undefined) o.out = v.out;
  if (v.alsa !== undefined) o.alsa = v.alsa;
  if (v['client-id'] !== undefined) {
    if (clientIdProblem(v['client-id']) !== null) throw new UsageError(`--client-id ${JSON.stringify(v['client-id'])}: ${valueHint('--client-id')}`);
    o.clientId = v['client-id'];
  }
  if (v.token !== undefined) o.token = v.token;
  if (v['target-ms'] !== undefined) {
    const n = Number(v['target-ms']);
    if (!(n >= 2.5 && n <= 200)) throw new UsageError(`--target-ms ${JSON.stringify(v['target-ms'])}: ${valueHint('--target-ms')}`);
    o.targetMs = n;
  }
  if (v.conceal !== undefined) {
    if (v.conceal !== 'waveform' && v.conceal !== 'silence') throw new UsageError(`--conceal ${JSON.stringify(v.conceal)}: ${valueHint('--conceal')}`);
    o.conceal = v.conceal;
  }
  if (v.transport !== undefined) {
    if (v.transport !== 'ws' && v.transport !== 'udp' && v.transport !== 'webrtc') throw new UsageError(`--transport ${JSON.stringify(v.transport)}: ${valueHint('--transport')}`);
    o.transport = v.transport;
  }
  if (v.redundancy !== undefined) {
    if (!/^[0-3]$/.test(v.redundancy.trim())) throw new UsageError(`--redundancy ${JSON.stringify(v.redundancy)}: ${valueHint('--redundancy')}`);
    o.redundancy = Number(v.redundancy);
  }
  if (v.spacing !== undefined) {
    const t = v.spacing.trim();
    if (t !== 'auto' && !/^[1-8]$/.test(t)) throw new UsageError(`--spacing ${JSON.stringify(v.spacing)}: ${valueHint('--spacing')}`);
    o.spacing = t === 'auto' ? 'auto' : Number(t);
  }
  if (o.help) return o;
  if (o.transport === 'ws' && (v.redundancy !== undefined || v.spacing !== undefined)) {
    throw new UsageError(`--${v.redundancy !== undefined ? 'redundancy' : 'spacing'} applies to --transport udp and webrtc; the WebSocket delivers every packet (allowed: leave it out, or use --transport udp or webrtc)`);
  }
  if (urls.length !== 1) {
    throw new UsageError(urls.length === 0 ? 'no url given; allowed: one ws:// URL such as ws://stagebox.local:5100/' : `${urls.length} urls given (${urls.map((u) => JSON.stringify(u)).join(', ')}); allowed: one`);
  }
  o.url = checkUrl(urls[0]!);
  if (o.channels && o.mix !== null) throw new UsageError('--channels and --mix were both given; allowed: one of them (raw channels, or a mix)');
  if (o.out === null && o.alsa === null) throw new UsageError('neither --out nor --alsa was given; allowed: exactly one (--out FILE.wav to record, --alsa DEVICE to play)');
  if (o.out !== null && o.alsa !== null) throw new UsageError('--out and --alsa were both given; allowed: exactly one (--out FILE.wav to record, --alsa DEVICE to play)');
  if (o.out !== null && o.out.trim() === '') throw new UsageError('--out: got an empty file name; allowed: a file path such as take1.wav');
  if (o.alsa !== null && !/^[A-Za-z0-9_:,.=\-]+$/.test(o.alsa)) throw new UsageError(`--alsa ${JSON.stringify(o.alsa)}: ${valueHint('--alsa')}`);
  const allowed: readonly string[] = o.mix !== null ? MIX_CODECS : CHANNEL_CODECS;
  if (codecGiven !== null) {
    if (!allowed.includes(codecGiven)) {
      throw new UsageError(`--codec ${JSON.stringify(codecGiven)}: not a codec ${o.mix !== null ? 'for a mix' : 'for raw channels'}; allowed: ${allowed.join(', ')}`);
    }
    o.codec = codecGiven as ListenOptions['codec'];
  }
  if (o.mix !== null && !o.token) throw new UsageError(`--mix ${JSON.stringify(o.mix)}: another client's mix is admin-only; give the box's admin token with --token (or STAGEBOX_ADMIN_TOKEN)`);
  if (!o.channels && o.mix === null) {
    o.channels = [1, 2];
    o.channelsText = '1-2';
  }
  return o;
}

function checkUrl(text: string): string {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw new UsageError(`url ${JSON.stringify(text)} is not a URL; allowed: a ws:// or wss:// URL such as ws://stagebox.local:5100/`);
  }
  if (u.protocol !== 'ws:' && u.protocol !== 'wss:') {
    throw new UsageError(`url ${JSON.stringify(text)} has the scheme ${JSON.stringify(u.protocol.replace(/:$/, ''))}; allowed: ws or wss, such as ws://stagebox.local:5100/`);
  }
  return u.href;
}

function valueHint(name: string): string {
  switch (name) {
    case '--channels':
      return 'allowed: inputs from 1, such as "1-4,7"';
    case '--mix':
      return "allowed: another client's clientId or name";
    case '--codec':
      return 'allowed: pcm16, pcm24, deflate (channels) or opus (a mix)';
    case '--seconds':
      return 'allowed: a number of seconds above 0, at most 86400';
    case '--out':
      return 'allowed: a file path such as take1.wav';
    case '--alsa':
      return 'allowed: an ALSA device name such as default, plughw:1 or plughw:CARD=X,DEV=0';
    case '--client-id':
      return 'allowed: 1-64 characters from A-Z a-z 0-9 . _ : -';
    case '--token':
      return "allowed: the box's admin.token";
    case '--target-ms':
      return 'allowed: 2.5-200 ms';
    case '--conceal':
      return 'allowed: waveform or silence';
    case '--transport':
      return 'allowed: udp, webrtc or ws';
    case '--redundancy':
      return 'allowed: 0, 1, 2 or 3 copies';
    case '--spacing':
      return 'allowed: auto or 1-8 packets';
    default:
      return 'a value is needed';
  }
}
