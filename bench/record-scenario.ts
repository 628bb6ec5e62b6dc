/**
 * The `record` scenario (issue #14): 32 channels recorded while 32 clients
 * are served (wide's load), side by side with the same load not recording,
 * on one service: windows alternate off, on, off, on, so both see the same
 * machine. The take goes to the bench's temp state dir (the host's disk).
 */
import http from 'node:http';
import type { ClientSpec } from './bench-ipc';
import { BenchSession, WARMUP_MS } from './bench-session';
import { rotation } from './channel-sets';
import { measurementFields, round, stopFields, type ReportLine } from './report';
import { sleep, type StopInfo } from './service-process';

const SOURCE_CHANNELS = 32;
const CLIENTS = 32;
const TOKEN = 'bench-record-token';
const ROUNDS = 3;

/** One request to the recording API with the admin token. */
function call(port: number, method: 'GET' | 'POST', path: string): Promise<{ status: number; json: Record<string, any> }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, method, path, agent: false, headers: { authorization: `Bearer ${TOKEN}`, connection: 'close', 'content-length': '0' } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          clearTimeout(timer);
          const text = Buffer.concat(chunks).toString('utf8');
          try {
            resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) as Record<string, any> });
          } catch {
            reject(new Error(`${method} ${path}: HTTP ${res.statusCode}, not JSON: ${text.slice(0, 200)}`));
          }
        });
      },
    );
    const timer = setTimeout(() => req.destroy(new Error(`${method} ${path}: no answer within 15 s`)), 15_000);
    req.on('error', reject);
    req.end();
  });
}

export async function runRecord(ctx: { seconds: number; log(msg: string): void }): Promise<ReportLine> {
  ctx.log('record: starting the service');
  const session = await BenchSession.open({ adminToken: TOKEN });
  const windows: ReportLine[] = [];
  let stop: StopInfo;
  try {
    const specs: ClientSpec[] = Array.from({ length: CLIENTS }, (_, i) => ({ clientId: `record-c-${String(i).padStart(4, '0')}`, channels: rotation(i, SOURCE_CHANNELS), codec: 'pcm16', stalled: false }));
    await session.addClients(specs);
    await sleep(WARMUP_MS);
    const port = session.service.port;
    for (let r = 0; r < ROUNDS; r++) {
      for (const recording of [false, true]) {
        let take: Record<string, any> | null = null;
        if (recording) {
          const start = await call(port, 'POST', '/api/recordings');
          if (start.status !== 201) throw new Error(`POST /api/recordings: HTTP ${start.status}: ${JSON.stringify(start.json)}`);
          // The writer thread's start (files, headers) is outside the window.
          await sleep(1000);
        }
        ctx.log(`record: round ${r + 1}, ${recording ? 'recording 32 channels' : 'not recording'}, measuring ${ctx.seconds} s...`);
        const m = await session.measure(ctx.seconds);
        const line: ReportLine = { recording, ...measurementFields({ clients: CLIENTS, channelsPerClient: SOURCE_CHANNELS, codec: 'pcm16' }, m) };
        if (recording) {
          const st = (await call(port, 'GET', '/api/recordings')).json.recording as Record<string, any>;
          const end = await call(port, 'POST', '/api/recordings/stop');
          if (end.status !== 200) throw new Error(`POST /api/recordings/stop: HTTP ${end.status}: ${JSON.stringify(end.json)}`);
          take = end.json.take as Record<string, any>;
          Object.assign(line, {
            takeSeconds: take.seconds,
            takeState: take.state,
            takeDropouts: (take.markers as { kind: string }[]).filter((k) => k.kind === 'dropout').length,
            writeBytesPerS: st.bytesPerSecond,
            bufferMaxFillPct: st.buffer.maxFillPct,
            writeErrors: st.writeErrors,
          });
        }
        windows.push(line);
      }
    }
  } finally {
    stop = await session.close();
  }
  const pick = (rec: boolean, key: string): unknown[] => windows.filter((w) => w.recording === rec).map((w) => w[key]);
  return {
    scenario: 'record',
    clients: CLIENTS,
    channelsRecorded: SOURCE_CHANNELS,
    seconds: ctx.seconds,
    offServerLatencyP99Ms: pick(false, 'serverLatencyP99Ms'),
    onServerLatencyP99Ms: pick(true, 'serverLatencyP99Ms'),
    offDeadlineMisses: pick(false, 'deadlineMisses'),
    onDeadlineMisses: pick(true, 'deadlineMisses'),
    offCaptureBlockP99Ms: pick(false, 'captureBlockP99Ms'),
    onCaptureBlockP99Ms: pick(true, 'captureBlockP99Ms'),
    offCpuPct: pick(false, 'cpuPct'),
    onCpuPct: pick(true, 'cpuPct'),
    onRssMb: pick(true, 'rssMb'),
    offRssMb: pick(false, 'rssMb'),
    takeSeconds: pick(true, 'takeSeconds').map((x) => round(x as number, 1)),
    windows,
    ...stopFields(stop),
  };
}
