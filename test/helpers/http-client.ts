import http from 'node:http';

export interface HttpResult {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One bounded HTTP request to the service on 127.0.0.1. */
export function httpRequest(port: number, method: string, path: string, timeoutMs = 5000): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`${method} ${path} on port ${port}: no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** The parts of GET /api/status these tests read. */
export interface StatusClient {
  clientId: string | null;
  name: string;
  address: string;
  codec: string | null;
  channels: number[];
  sentPackets: number;
  drops: number;
  queued: number;
  rttMs: number | null;
  playbackBufferMs: number | null;
  underruns: number | null;
}

export interface Status {
  version: string;
  uptimeS: number;
  capture: {
    kind: string;
    state: string;
    device: string;
    format: { format: string; channels: number; rate: number; periodFrames: number } | null;
    xruns: number;
    discardedPeriods: number;
    reopenCount: number;
    lastError: string | null;
    stuckReaders: number;
  };
  pool: Record<string, number>;
  perf: Record<string, unknown>;
  server: {
    port: number;
    clients: number;
    maxClients: number;
    /** Connections that have not said hello yet, their budget, and how many were closed (4013) to make room. */
    handshakes: { pending: number; maxPending: number; maxPendingPerAddress: number; evicted: number };
  };
  clients: StatusClient[];
  /** The system collector's latest sample and its counters; null before the collector started. */
  system: {
    sampledAt: string | null;
    intervalS: number;
    cpu: { loadPct: number; coresPct: number[]; tempC: number | null } | null;
    mem: { totalBytes: number; usedBytes: number; usedPct: number } | null;
    skippedCalls: number;
    failedCalls: number;
  } | null;
}

export async function getStatus(port: number): Promise<Status> {
  const res = await httpRequest(port, 'GET', '/api/status');
  if (res.status !== 200) throw new Error(`GET /api/status: HTTP ${res.status}: ${res.body.slice(0, 300)}`);
  return JSON.parse(res.body) as Status;
}
