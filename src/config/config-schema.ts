import { z } from 'zod';
import { SAMPLE_FORMATS } from '../engine/sample-format';

/**
 * The one configuration schema. Every key has a default, a description and a
 * needs-restart flag (all keys need a restart for now). docs/configuration.md
 * lists every key; a test keeps the two in step.
 */

export const SAMPLE_RATES = [44100, 48000, 96000] as const;

const autoOr = <T extends z.ZodTypeAny>(t: T) => z.union([z.literal('auto'), t]);

const captureSchema = z
  .object({
    device: z
      .string()
      .min(1)
      .max(256)
      .default('auto')
      .describe(
        '"auto" picks the USB interface with the most capture channels from /proc/asound and falls back to the built-in test signal; "test-signal" forces the test signal; anything else is an ALSA PCM name (hw:CARD=X, plughw:1, a name from asoundrc).',
      ),
    wavFile: z
      .string()
      .min(1)
      .nullable()
      .default(null)
      .describe('Path of a WAV file to stream instead of a device, paced in real time and looped (demos). Overrides device.'),
    channels: autoOr(z.number().int().min(1).max(64))
      .default('auto')
      .describe('Capture channels, 1-64. "auto": the card\'s maximum from /proc/asound; 32 for the test signal.'),
    format: autoOr(z.enum(SAMPLE_FORMATS))
      .default('auto')
      .describe('Sample format. "auto": the card\'s format from /proc/asound; a device whose card cannot be read there needs it set.'),
    rate: z
      .union([z.literal(44100), z.literal(48000), z.literal(96000)])
      .default(48000)
      .describe('Sample rate in Hz: 44100, 48000 or 96000.'),
    periodFrames: z.number().int().min(32).max(1024).default(128).describe('Frames per period, 32-1024 (128 @ 48 kHz = 2.67 ms).'),
    retryInitialMs: z.number().int().min(50).max(60000).default(500).describe('First retry delay after a device fails to open or disappears, ms.'),
    retryMaxMs: z.number().int().min(100).max(300000).default(10000).describe('Longest retry delay (the backoff doubles up to this), ms.'),
    stallTimeoutMs: z.number().int().min(100).max(60000).default(2000).describe('A device that delivers no period for this long is treated as lost and reopened, ms.'),
  })
  .strict()
  .default({});

const serverSchema = z
  .object({
    host: z.string().min(1).default('0.0.0.0').describe('Address the HTTP/WebSocket server listens on ("::" for IPv6 too).'),
    port: z.number().int().min(0).max(65535).default(5100).describe('TCP port of the stream server and dashboard (0 = any free port, logged).'),
  })
  .strict()
  .default({});

const streamSchema = z
  .object({
    maxClients: z
      .number()
      .int()
      .min(1)
      .max(4096)
      .default(256)
      .describe('Most clients that have said hello at once; the next hello is answered by a close with 1013. Connections still waiting to say hello do not count (see maxPendingHandshakes).'),
    maxPendingHandshakes: z
      .number()
      .int()
      .min(1)
      .max(4096)
      .default(128)
      .describe(
        'Most connections at once that have not said hello yet (counted apart from maxClients, so silent sockets cannot lock musicians out). A new connection beyond it closes the oldest of them with 4013.',
      ),
    maxPendingPerAddress: z
      .number()
      .int()
      .min(1)
      .max(4096)
      .default(32)
      .describe('Most connections from one IP address at once that have not said hello yet; a new one beyond it closes the oldest of that address with 4013.'),
    sendQueuePackets: z.number().int().min(1).max(1024).default(8).describe('Per-client send queue, packets. Full: the oldest is dropped and counted.'),
    maxInFlightPackets: z.number().int().min(1).max(64).default(2).describe('Packets handed to a client\'s socket but not yet written to the kernel before new ones wait in the queue.'),
    maxPayloadBytes: z.number().int().min(512).max(1048576).default(16384).describe('Largest control frame accepted from a client; bigger closes with 1009.'),
    helloTimeoutMs: z.number().int().min(100).max(120000).default(5000).describe('A client that has not sent hello by then is closed with 4001.'),
    heartbeatIntervalMs: z.number().int().min(100).max(60000).default(2000).describe('WebSocket ping interval, ms.'),
    heartbeatTimeoutMs: z.number().int().min(200).max(300000).default(10000).describe('A client silent (no frame, no pong) this long is closed with 4009.'),
    stallTimeoutMs: z.number().int().min(100).max(300000).default(5000).describe('A client whose socket accepts nothing this long is closed with 4008.'),
    controlRatePerSecond: z.number().int().min(1).max(10000).default(50).describe('Control messages per second a client may send (token bucket refill).'),
    controlBurst: z.number().int().min(1).max(10000).default(100).describe('Control message burst allowance (token bucket size).'),
    opusBitrateKbps: z
      .number()
      .int()
      .min(6)
      .max(510)
      .default(96)
      .describe('Bitrate of an opus personal mix whose mix message gives none, kbit/s (hard CBR). 96 is transparent enough for in-ear monitoring of a stereo mix; a mono mix can take half.'),
  })
  .strict()
  .default({});

const udpSchema = z
  .object({
    enabled: z.boolean().default(true).describe('Offer audio over UDP to clients that ask for it (docs/protocol.md §12). false: WebSocket only.'),
    port: z
      .number()
      .int()
      .min(0)
      .max(65535)
      .nullable()
      .default(null)
      .describe('UDP port for audio datagrams. null: the one after server.port (5101 by default; any free port when server.port is 0).'),
    flowTimeoutMs: z
      .number()
      .int()
      .min(500)
      .max(60000)
      .default(3000)
      .describe('A UDP flow with no datagram from its client this long falls back to the WebSocket, ms (clients send a keepalive every 0.5 s).'),
    maxDatagramBytes: z
      .number()
      .int()
      .min(576)
      .max(65507)
      .default(1472)
      .describe('Largest datagram the box sends when it adds redundant copies (1472: one Ethernet/Wi-Fi frame without IP fragments); a single packet larger than this is still sent.'),
    sourceRatePerSecond: z.number().int().min(1).max(10000).default(20).describe('Datagrams one source address:port may send a second before the rest are dropped and counted.'),
    sourceBurst: z.number().int().min(1).max(10000).default(40).describe('Burst allowance of that per-source limit.'),
  })
  .strict()
  .default({});

const webrtcSchema = z
  .object({
    enabled: z
      .boolean()
      .default(true)
      .describe('Offer audio over WebRTC data channels to browsers that ask for it (docs/protocol.md §13): the listener page prefers it to the WebSocket. false: not offered.'),
    maxPeers: z
      .number()
      .int()
      .min(1)
      .max(256)
      .default(8)
      .describe('Most browsers on a data channel at once; the next offer gets too-many-peers and its audio stays on the WebSocket. Each costs about 3-4 % of a core (werift, in the main thread): BENCHMARKS.md.'),
    connectTimeoutMs: z.number().int().min(1000).max(60000).default(10000).describe('A peer connection whose channel is not open this long after the answer is closed, ms; its audio stays on the WebSocket.'),
    maxBufferedBytes: z
      .number()
      .int()
      .min(2048)
      .max(1048576)
      .default(16384)
      .describe('Bytes a data channel may hold unsent before the box drops datagrams for it (as the WebSocket queue bounds packets): 16384 is 35-70 ms of audio.'),
  })
  .strict()
  .default({});

const poolSchema = z
  .object({
    size: autoOr(z.number().int().min(0).max(64))
      .default('auto')
      .describe('Send pool worker threads. "auto": availableParallelism() - 1 (the main thread keeps a core), at least 1. 0 encodes on the main thread.'),
    inlineBudgetPct: z
      .number()
      .min(0)
      .max(90)
      .default(50)
      .describe(
        'Share of one period the main thread may spend encoding and mixing it, percent. The pool measures what encoding channel outputs and rendering personal mixes cost on this machine and does each on the main thread while the predicted time fits this budget, in the workers otherwise (the hop costs more than it saves for small loads; see docs/architecture.md). Opus encoding of mixes always runs on the main thread. 0: always use the workers.',
      ),
  })
  .strict()
  .default({});

const stateSchema = z
  .object({
    dir: z
      .string()
      .min(1)
      .default('/var/lib/stagebox')
      .describe('Directory for clients\' mixes and channel metadata (state.json, written atomically). Must be writable; if it is not, the service runs without saving and says so.'),
    maxClients: z.number().int().min(1).max(100000).default(500).describe('Most clients remembered; beyond it, those seen longest ago are forgotten first.'),
  })
  .strict()
  .default({});

/** Config keys holding a credential: never printed, logged or echoed in an error. */
export const SECRET_KEYS: readonly string[] = ['admin.token'];

/** A copy of `config` fit to print: every credential that is set reads "(set; not shown)". */
export function redactSecrets<T extends object>(config: T): T {
  const copy = structuredClone(config) as Record<string, unknown>;
  for (const key of SECRET_KEYS) {
    const parts = key.split('.');
    let node = copy;
    for (const p of parts.slice(0, -1)) node = (node[p] ?? {}) as Record<string, unknown>;
    const last = parts[parts.length - 1]!;
    if (node[last] !== null && node[last] !== undefined) node[last] = '(set; not shown)';
  }
  return copy as T;
}

const adminSchema = z
  .object({
    token: z
      .string()
      .min(4)
      .max(256)
      .nullable()
      .default(null)
      .describe(
        'The sound engineer\'s token or PIN (4-256 characters). A client that sends it in an "auth" message may edit channel metadata, any client\'s mix and the box-wide output limit, and list every client. null: nobody is admin. Never printed or logged; prefer STAGEBOX_ADMIN_TOKEN or a config file readable only by the service.',
      ),
    maxFailures: z.number().int().min(1).max(100).default(5).describe('Wrong tokens from one address before it is locked out.'),
    lockoutS: z.number().int().min(1).max(3600).default(60).describe('How long an address is locked out after maxFailures wrong tokens, seconds (doubles on each further lockout, up to 1 hour).'),
  })
  .strict()
  .default({});

/** MQTT URL schemes the reporter can speak. */
export const MQTT_SCHEMES = ['mqtt', 'mqtts', 'ws', 'wss'] as const;
/** A device id or topic level: lower-case letters, digits, "-" and "_" (never "+", "#" or "/"). */
export const TOPIC_ID_PATTERN = /^[a-z0-9][a-z0-9_-]{0,63}$/;
const TOPIC_ID_RULE = '1-64 of a-z, 0-9, "-" and "_", starting with a letter or digit (no "+", "#", "/" or upper case)';
/** A topic prefix: levels of TOPIC_ID_PATTERN's characters separated by "/". */
export const TOPIC_PREFIX_PATTERN = /^[a-zA-Z0-9_-]+(\/[a-zA-Z0-9_-]+)*$/;
const TOPIC_PREFIX_RULE = 'topic levels of a-z, A-Z, 0-9, "-" and "_" separated by single "/" (no "+", "#", spaces, or leading/trailing "/")';

const healthSchema = z
  .object({
    systemIntervalS: z
      .number()
      .int()
      .min(0)
      .max(3600)
      .default(5)
      .describe(
        'How often the system collector samples CPU, temperature, memory, disk, network and throttling, seconds (0: never; system figures are then null). The calls run off the audio path and never overlap: a sample still running when the next is due makes that one skipped.',
      ),
    overloadCpuPct: z.number().min(1).max(100).default(90).describe('Total CPU load at or above which an "overload" event is sent, percent (also sent when the send pool misses a period deadline or skips a period).'),
  })
  .strict()
  .default({});

const mqttSchema = z
  .object({
    enabled: z.boolean().default(true).describe('Report health over MQTT. false: no MQTT client and no embedded broker.'),
    url: z
      .string()
      .regex(/^(mqtts?|wss?):\/\/[^\s]+$/, { message: 'a URL starting with mqtt://, mqtts://, ws:// or wss://' })
      .refine((v) => {
        try {
          const u = new URL(v);
          return u.username === '' && u.password === '';
        } catch {
          return false;
        }
      }, { message: 'a valid URL with no user name or password in it (those go in mqtt.credentialsFile)' })
      .nullable()
      .default(null)
      .describe(
        'Broker to publish to: mqtt://host:1883, mqtts://host:8883, ws://host/path or wss://host/path. null: publish to the embedded broker (mqtt.embeddedBroker).',
      ),
    caFile: z.string().min(1).nullable().default(null).describe('PEM file of the CA that signed the broker\'s certificate (mqtts://, wss://). null: the system CAs.'),
    certFile: z.string().min(1).nullable().default(null).describe('PEM client certificate for brokers that require one (mqtts://, wss://); needs keyFile too.'),
    keyFile: z.string().min(1).nullable().default(null).describe('PEM private key of certFile.'),
    credentialsFile: z
      .string()
      .min(1)
      .nullable()
      .default(null)
      .describe(
        'JSON file {"username": "...", "password": "..."} with the broker login, kept apart from this config (make it readable only by the service). Read at start; must exist when set. The password is never printed or logged. null: connect without a login.',
      ),
    clientId: z.string().min(1).max(128).nullable().default(null).describe('MQTT client id. null: "stagebox-<deviceId>".'),
    topicPrefix: z
      .string()
      .max(128)
      .regex(TOPIC_PREFIX_PATTERN, { message: TOPIC_PREFIX_RULE })
      .default('stagebox')
      .describe('First topic level(s): topics are <topicPrefix>/<deviceId>/status, /health, /clients, /event (docs/mqtt.md).'),
    deviceId: z
      .string()
      .regex(TOPIC_ID_PATTERN, { message: TOPIC_ID_RULE })
      .nullable()
      .default(null)
      .describe('This box\'s topic level and Home Assistant device id. null: the host name, lower-cased, every character other than a-z, 0-9, "-" and "_" replaced by "-".'),
    healthIntervalS: z.number().int().min(1).max(3600).default(10).describe('How often the retained health snapshot is published, seconds.'),
    clientsMinIntervalMs: z.number().int().min(100).max(60000).default(1000).describe('The retained client list is published when it changes, at most once per this many ms.'),
    reconnectInitialMs: z.number().int().min(100).max(60000).default(1000).describe('First reconnect delay after the broker is lost or unreachable, ms (doubles on each failure).'),
    reconnectMaxMs: z.number().int().min(100).max(600000).default(30000).describe('Longest reconnect delay, ms.'),
    homeAssistant: z
      .object({
        enabled: z
          .boolean()
          .default(true)
          .describe('Publish Home Assistant MQTT discovery configs (one device with its sensors and availability). false: the configs this box published are removed (empty retained payloads) on connect.'),
        discoveryPrefix: z.string().max(128).regex(TOPIC_PREFIX_PATTERN, { message: TOPIC_PREFIX_RULE }).default('homeassistant').describe('Home Assistant\'s discovery prefix.'),
      })
      .strict()
      .default({}),
    embeddedBroker: z
      .object({
        enabled: z.boolean().default(true).describe('With mqtt.url null, run a small MQTT broker (aedes) in the service and publish to it. false: no broker, nothing published.'),
        host: z.string().min(1).default('0.0.0.0').describe('Address the embedded broker listens on.'),
        port: z.number().int().min(0).max(65535).default(1883).describe('TCP port of the embedded broker (0 = any free port, logged). If it is taken, that is logged and the service runs on without MQTT.'),
      })
      .strict()
      .default({}),
  })
  .strict()
  .default({});

const dashboardSchema = z
  .object({
    maxViewers: z
      .number()
      .int()
      .min(1)
      .max(64)
      .default(8)
      .describe('Most dashboards (live feed WebSockets at /api/live) at once; the next is closed with 1013. Dashboards never count as stream clients.'),
    latencyAmberMs: z
      .number()
      .min(1)
      .max(10000)
      .default(20)
      .describe('A client whose round-trip time (box ping to pong) reaches this shows amber on the dashboard, ms.'),
    latencyRedMs: z
      .number()
      .min(1)
      .max(10000)
      .default(50)
      .describe('A client whose round-trip time reaches this shows red on the dashboard, ms. Must be > dashboard.latencyAmberMs.'),
  })
  .strict()
  .default({});

/** DNS-SD instance name (RFC 6763 4.1.1): 1-63 bytes of UTF-8, no control characters; no "." (it would be escaped or mangled by browsers). */
export function instanceNameProblem(name: string): string | null {
  const bytes = Buffer.byteLength(name, 'utf8');
  if (bytes < 1 || bytes > 63) return `${bytes} bytes of UTF-8`;
  if (/[\u0000-\u001f\u007f]/.test(name)) return 'a control character';
  if (name.includes('.')) return 'a "."';
  if (name.trim() !== name) return 'leading or trailing white space';
  return null;
}
export const INSTANCE_NAME_RULE = 'a DNS-SD instance name: 1-63 bytes of UTF-8, no control characters, no ".", no leading or trailing space';

const discoverySchema = z
  .object({
    enabled: z
      .boolean()
      .default(true)
      .describe('Announce the box on the local network with mDNS/DNS-SD: the stream as _stagebox._tcp and the dashboard as _http._tcp (docs/protocol.md, "Finding the box"). false: nothing is sent to the mDNS group.'),
    name: z
      .string()
      .superRefine((v, ctx) => {
        const problem = instanceNameProblem(v);
        if (problem !== null) ctx.addIssue({ code: z.ZodIssueCode.custom, message: `${INSTANCE_NAME_RULE} (this one has ${problem})` });
      })
      .default('stagebox')
      .describe(
        'Instance name shown to phones: 1-63 bytes of UTF-8, no ".", no control characters (spaces and any language allowed). It also gives the host name the answers point to: <name>.local in lower case, characters other than a-z, 0-9 and "-" as "-" ("stagebox" if none is left). When another device on the network already uses the name, the box takes <name>-2, <name>-3, ... (up to <name>-16, host names alike), logs it and shows it in /api/status (discovery.name).',
      ),
  })
  .strict()
  .default({});

/** A folder as an absolute, normalised path ("/media", not "media/" or "/media/../etc"). */
const absoluteDir = z
  .string()
  .min(1)
  .max(4096)
  .refine((v) => v.startsWith('/') && v === posixNormalize(v), { message: 'an absolute path without "..", "." or a trailing "/"' });

function posixNormalize(p: string): string {
  const parts: string[] = [];
  for (const seg of p.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') parts.pop();
    else parts.push(seg);
  }
  return `/${parts.join('/')}`;
}

const recordingSchema = z
  .object({
    dir: z
      .union([z.literal('auto'), absoluteDir])
      .default('auto')
      .describe(
        'Where takes go. "auto": the first writable USB mass-storage drive mounted at or below one of recording.drives (in its folder "stagebox"), else <state.dir>/recordings. A folder: every take goes there; it must be inside one of recording.drives or inside state.dir.',
      ),
    drives: z
      .array(absoluteDir)
      .min(1)
      .max(16)
      .default(['/media', '/mnt', '/run/media'])
      .describe('Folders whose mounts count as recording drives: a filesystem mounted at or below one of them is listed and may be chosen for a take. Nothing outside them (and state.dir) is ever written or served.'),
    layout: z
      .enum(['mono', 'multi'])
      .default('mono')
      .describe(
        '"mono": one mono WAV per input ("01 Kick.wav"), what every DAW imports as one track per file, named; a file stays under FAT\'s 4 GiB for 8 hours at 48 kHz/24 bit. "multi": one interleaved WAV per take (RF64 past 4 GiB; on FAT it continues in a new part every 4 GiB, 15 minutes at 32 channels). docs/architecture.md, "Recording".',
      ),
    bufferS: z
      .number()
      .min(1)
      .max(30)
      .default(4)
      .describe(
        'Audio held in memory while the drive is slower than the capture, seconds; when it is full the take ends ("drive too slow"), never the audio. Its size is all capture channels for this long: 32 channels of S24_3LE at 48 kHz for 4 s take 17.6 MiB, of S32_LE 23.4 MiB; allocated by the first take and used again by the next ones.',
      ),
    syncIntervalMs: z
      .number()
      .int()
      .min(100)
      .max(10000)
      .default(1000)
      .describe('How often the audio is flushed to the drive (fdatasync) and every file\'s header rewritten to declare it, ms: a power cut or a pulled drive loses at most about this much.'),
    minFreeMiB: z
      .number()
      .int()
      .min(0)
      .max(1048576)
      .default(64)
      .describe('A take ends ("drive full") when the drive has less free space than this, MiB, so its files can still be closed.'),
  })
  .strict()
  .default({});

const logSchema = z
  .object({
    level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info').describe('Log level.'),
  })
  .strict()
  .default({});

export const configSchema = z
  .object({
    capture: captureSchema,
    server: serverSchema,
    stream: streamSchema,
    udp: udpSchema,
    webrtc: webrtcSchema,
    pool: poolSchema,
    state: stateSchema,
    admin: adminSchema,
    health: healthSchema,
    mqtt: mqttSchema,
    dashboard: dashboardSchema,
    discovery: discoverySchema,
    recording: recordingSchema,
    log: logSchema,
  })
  .strict();

export type Config = z.infer<typeof configSchema>;
export type CaptureConfig = Config['capture'];
export type StreamConfig = Config['stream'];
export type UdpConfig = Config['udp'];
export type WebRtcConfig = Config['webrtc'];
export type AdminConfig = Config['admin'];
export type HealthConfig = Config['health'];
export type MqttConfig = Config['mqtt'];
export type DashboardConfig = Config['dashboard'];
export type DiscoveryConfig = Config['discovery'];
export type RecordingConfig = Config['recording'];

/** Env variables for the common keys: name → dotted config key. */
export const ENV_OVERRIDES: Readonly<Record<string, { key: string; type: 'string' | 'number' | 'auto-number' }>> = {
  STAGEBOX_DEVICE: { key: 'capture.device', type: 'string' },
  STAGEBOX_WAV_FILE: { key: 'capture.wavFile', type: 'string' },
  STAGEBOX_CHANNELS: { key: 'capture.channels', type: 'auto-number' },
  STAGEBOX_FORMAT: { key: 'capture.format', type: 'string' },
  STAGEBOX_RATE: { key: 'capture.rate', type: 'number' },
  STAGEBOX_PERIOD_FRAMES: { key: 'capture.periodFrames', type: 'number' },
  STAGEBOX_HOST: { key: 'server.host', type: 'string' },
  STAGEBOX_PORT: { key: 'server.port', type: 'number' },
  STAGEBOX_MAX_CLIENTS: { key: 'stream.maxClients', type: 'number' },
  STAGEBOX_POOL_SIZE: { key: 'pool.size', type: 'auto-number' },
  STAGEBOX_POOL_INLINE_BUDGET_PCT: { key: 'pool.inlineBudgetPct', type: 'number' },
  STAGEBOX_LOG_LEVEL: { key: 'log.level', type: 'string' },
  STAGEBOX_STATE_DIR: { key: 'state.dir', type: 'string' },
  STAGEBOX_RECORDING_DIR: { key: 'recording.dir', type: 'string' },
  STAGEBOX_ADMIN_TOKEN: { key: 'admin.token', type: 'string' },
  STAGEBOX_MQTT_URL: { key: 'mqtt.url', type: 'string' },
  STAGEBOX_MQTT_CREDENTIALS_FILE: { key: 'mqtt.credentialsFile', type: 'string' },
};
