import type http from 'node:http';

import type { PrometheusMetrics } from './prometheus-metrics';

/** /healthz's verdict: healthy, or the reasons it is not. */
export interface Health {
  healthy: boolean;
  reasons: string[];
  /** Problems that leave the audio untouched (state not saved): status "degraded", still HTTP 200. */
  warnings: string[];
  body: object;
}

function verdict(h: Health): 'ok' | 'degraded' | 'unhealthy' {
  if (!h.healthy) return 'unhealthy';
  return h.warnings.length > 0 ? 'degraded' : 'ok';
}

/** What the HTTP API needs from the rest of the service. */
export interface StatusProvider {
  status(): object;
  resetPerf(): void;
  healthz(): Health;
  readonly metrics: PrometheusMetrics;
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
      if (url.pathname === '/healthz') {
        if (req.method !== 'GET' && req.method !== 'HEAD') return sendJson(res, 405, { error: `method ${req.method} not allowed on ${url.pathname}; allowed: GET` });
        const h = provider.healthz();
        return sendJson(res, h.healthy ? 200 : 503, { status: verdict(h), reasons: h.reasons, warnings: h.warnings, ...h.body });
      }
      if (url.pathname === '/metrics') {
        if (req.method !== 'GET' && req.method !== 'HEAD') return sendJson(res, 405, { error: `method ${req.method} not allowed on ${url.pathname}; allowed: GET` });
        provider.metrics.metrics().then(
          (text) => {
            res.writeHead(200, { 'content-type': provider.metrics.contentType(), 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text) });
            res.end(req.method === 'HEAD' ? undefined : text);
          },
          (err: Error) => sendJson(res, 500, { error: `metrics failed: ${err.message}` }),
        );
        return;
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
