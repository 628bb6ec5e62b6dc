import type http from 'node:http';

/** What the HTTP API needs from the rest of the service. */
export interface StatusProvider {
  status(): object;
  resetPerf(): void;
}

function sendJson(res: http.ServerResponse, code: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(code, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** Routes of the HTTP API on the stream server's port. */
export function createStatusRoutes(provider: StatusProvider): http.RequestListener {
  return (req, res) => {
    const url = new URL(req.url ?? '/', 'http://box');
    try {
      if (url.pathname === '/api/status') {
        if (req.method !== 'GET' && req.method !== 'HEAD') return sendJson(res, 405, { error: `method ${req.method} not allowed on ${url.pathname}; allowed: GET` });
        return sendJson(res, 200, provider.status());
      }
      if (url.pathname === '/api/perf/reset') {
        if (req.method !== 'POST') return sendJson(res, 405, { error: `method ${req.method} not allowed on ${url.pathname}; allowed: POST` });
        provider.resetPerf();
        res.writeHead(204).end();
        return;
      }
      sendJson(res, 404, { error: `no such path ${url.pathname}` });
    } catch (err) {
      sendJson(res, 500, { error: (err as Error).message });
    }
  };
}
