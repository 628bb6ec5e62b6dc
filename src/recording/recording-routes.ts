import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type http from 'node:http';
import path from 'node:path';
import type { z } from 'zod';
import { RecordingControl } from './recording-control';
import { RecordingError } from './recording-error';
import { markerBodySchema, playbackBodySchema, startBodySchema } from './recording-messages';

/** The admin token check the WebSocket `auth` uses (control/admin-auth.ts): same lockout per address. */
export interface TokenCheck {
  /** Throws an error with `code` "admin-disabled", "auth-locked" or "bad-credentials". */
  check(address: string, token: string): void;
}

/** Largest request body, bytes (the biggest request is a start with 64 channels and a name). */
const MAX_BODY = 16 * 1024;
const BODY_TIMEOUT_MS = 5000;

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

function send(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

function allow(req: http.IncomingMessage, methods: string[]): void {
  if (!methods.includes(req.method ?? 'GET')) {
    throw new HttpError(405, 'method-not-allowed', `method ${req.method} not allowed here; allowed: ${methods.join(', ')}`, { allow: methods.join(', ') });
  }
}

/** Reads a JSON body (empty: `{}`), whatever its content type: curl -d sends form encoding by default. */
function readJson(req: http.IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const timer = setTimeout(() => req.destroy(new Error('body timeout')), BODY_TIMEOUT_MS);
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) {
        clearTimeout(timer);
        reject(new HttpError(413, 'body-too-large', `request body over ${MAX_BODY} bytes`));
        req.destroy();
        return;
      }
      chunks.push(c);
    });
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(new HttpError(400, 'bad-body', `request body: ${err.message}`));
    });
    req.on('end', () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString('utf8').trim();
      if (text === '') return resolve({});
      try {
        resolve(JSON.parse(text));
      } catch (err) {
        reject(new HttpError(400, 'bad-json', `request body is not valid JSON: ${(err as Error).message}`));
      }
    });
  });
}

function parseBody<T>(schema: z.ZodType<T>, raw: unknown, what: string): T {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new HttpError(400, 'invalid-message', `${what}: the body is a JSON object; got ${Array.isArray(raw) ? 'an array' : JSON.stringify(raw)}`);
  const r = schema.safeParse(raw);
  if (r.success) return r.data;
  const problems = r.error.issues.map((i) => {
    if (i.code === 'unrecognized_keys') return `unknown field(s) ${i.keys.map((k) => JSON.stringify(k)).join(', ')}`;
    let v: unknown = raw;
    for (const p of i.path) v = v !== null && typeof v === 'object' ? (v as Record<string | number, unknown>)[p] : undefined;
    return `${i.path.join('.') || '(body)'}: got ${v === undefined ? 'nothing' : JSON.stringify(v)?.slice(0, 60)}; ${i.message}`;
  });
  throw new HttpError(400, 'invalid-message', `${what}: ${problems.join('; ')}`);
}

/**
 * The recording HTTP API: /api/recordings (list, start, stop, markers, a
 * take, its files, delete) and /api/playback (virtual soundcheck). Every
 * request needs `Authorization: Bearer <admin.token>`; without it the answer
 * is 401 and nothing happens. Returns a handler that answers its own paths
 * and returns false for any other.
 */
export function createRecordingRoutes(control: RecordingControl, tokens: TokenCheck): (req: http.IncomingMessage, res: http.ServerResponse) => boolean {
  return (req, res) => {
    const url = new URL(req.url ?? '/', 'http://box');
    const p = url.pathname;
    if (p !== '/api/playback' && p !== '/api/recordings' && !p.startsWith('/api/recordings/')) return false;
    // A signed link from a listing opens its one file without the token (a browser link cannot send one).
    const signed = url.searchParams.has('sig') ? control.linkValid(p, url.searchParams.get('expires'), url.searchParams.get('sig')) : null;
    handle(req, res, p, control, tokens, signed).catch((err: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (err instanceof RecordingError) send(res, err.httpStatus, { error: err.message, code: err.code });
      else if (err instanceof HttpError) send(res, err.status, { error: err.message, code: err.code }, err.headers);
      else send(res, 500, { error: (err as Error).message, code: 'internal' });
    });
    return true;
  };
}

function authorize(req: http.IncomingMessage, tokens: TokenCheck): void {
  const header = req.headers.authorization;
  const m = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
  const challenge = { 'www-authenticate': 'Bearer realm="stagebox"' };
  if (!m) throw new HttpError(401, 'unauthorized', 'the recording API needs the admin token: send "Authorization: Bearer <admin.token>"', challenge);
  try {
    tokens.check(req.socket.remoteAddress ?? '?', m[1]!);
  } catch (err) {
    const code = (err as { code?: string }).code ?? 'bad-credentials';
    const text = (err as Error).message;
    if (code === 'admin-disabled') throw new HttpError(403, code, text);
    if (code === 'auth-locked') throw new HttpError(429, code, text, { 'retry-after': /(\d+) s/.exec(text)?.[1] ?? '60' });
    throw new HttpError(401, 'bad-credentials', text, challenge);
  }
}

async function handle(req: http.IncomingMessage, res: http.ServerResponse, p: string, control: RecordingControl, tokens: TokenCheck, signed: boolean | null): Promise<void> {
  if (signed === false) throw new HttpError(403, 'bad-link', 'this download link is expired or not valid; list the takes again for a fresh one');
  const isFile = /^\/api\/recordings\/[^/]+\/files\/[^/]+$/.test(p);
  if (signed !== true || !isFile || (req.method !== 'GET' && req.method !== 'HEAD')) authorize(req, tokens);
  if (p === '/api/playback') {
    allow(req, ['GET', 'POST']);
    if (req.method === 'GET') return send(res, 200, control.soundcheck.status());
    return send(res, 200, await control.playback(parseBody(playbackBodySchema, await readJson(req), 'POST /api/playback')));
  }
  if (p === '/api/recordings') {
    allow(req, ['GET', 'POST']);
    if (req.method === 'GET') return send(res, 200, await control.list());
    const body = parseBody(startBodySchema, await readJson(req), 'POST /api/recordings');
    const take = await control.start(body);
    return send(res, 201, { take }, { location: `/api/recordings/${encodeURIComponent(take.id)}` });
  }
  let parts: string[];
  try {
    parts = p.slice('/api/recordings/'.length).split('/').map(decodeURIComponent);
  } catch {
    throw new HttpError(400, 'bad-path', `malformed percent-encoding in ${p}`);
  }
  if (parts.length === 1 && parts[0] === 'stop') {
    allow(req, ['POST']);
    return send(res, 200, { take: await control.stop() });
  }
  if (parts.length === 1 && parts[0] === 'markers') {
    allow(req, ['POST']);
    const body = parseBody(markerBodySchema, await readJson(req), 'POST /api/recordings/markers');
    return send(res, 201, { marker: control.marker(body.label) });
  }
  if (parts.length === 1 && parts[0] !== '') {
    allow(req, ['GET', 'DELETE']);
    if (req.method === 'GET') return send(res, 200, { take: await control.take(parts[0]!) });
    await control.remove(parts[0]!);
    return send(res, 200, { deleted: parts[0] });
  }
  if (parts.length === 3 && parts[1] === 'files') {
    allow(req, ['GET', 'HEAD']);
    return download(req, res, await control.file(parts[0]!, parts[2]!));
  }
  throw new HttpError(404, 'not-found', `no such path ${p}; the recording API: /api/recordings, /api/recordings/stop, /api/recordings/markers, /api/recordings/<take>, /api/recordings/<take>/files/<file>, /api/playback`);
}

/** Streams a file, with single byte ranges (resuming a big take with curl -C -). */
async function download(req: http.IncomingMessage, res: http.ServerResponse, file: string): Promise<void> {
  const size = (await stat(file)).size;
  const name = path.basename(file);
  const headers: Record<string, string | number> = {
    'content-type': name.endsWith('.json') ? 'application/json' : 'audio/wav',
    'content-disposition': `attachment; filename="${name.replace(/[^\x20-\x7e]|"/g, '_')}"; filename*=UTF-8''${encodeURIComponent(name)}`,
    'accept-ranges': 'bytes',
    'cache-control': 'no-store',
  };
  let start = 0;
  let end = size - 1;
  const range = req.headers.range;
  if (range) {
    const m = /^bytes=(\d*)-(\d*)$/.exec(range.trim());
    if (!m || (m[1] === '' && m[2] === '')) throw new HttpError(416, 'bad-range', `Range ${JSON.stringify(range)}: allowed: one range "bytes=a-b", "bytes=a-" or "bytes=-n"`, { 'content-range': `bytes */${size}` });
    if (m[1] === '') start = Math.max(0, size - Number(m[2]));
    else {
      start = Number(m[1]);
      if (m[2] !== '') end = Math.min(end, Number(m[2]));
    }
    if (start >= size || start > end) throw new HttpError(416, 'bad-range', `Range ${JSON.stringify(range)} is outside the file (${size} bytes)`, { 'content-range': `bytes */${size}` });
    headers['content-range'] = `bytes ${start}-${end}/${size}`;
  }
  headers['content-length'] = size === 0 ? 0 : end - start + 1;
  res.writeHead(range ? 206 : 200, headers);
  if (req.method === 'HEAD' || size === 0) {
    res.end();
    return;
  }
  const stream = createReadStream(file, { start, end });
  stream.on('error', () => res.destroy());
  stream.pipe(res);
}
