import http from 'node:http';

/** One answer of the recording HTTP API. */
export interface ApiResult {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  /** The body as JSON (throws with the text when it is not). */
  json<T = Record<string, unknown>>(): T;
}

/**
 * A bounded HTTP request to the service with an optional bearer token,
 * JSON body (an object is serialised; a string is sent as it is) and extra headers.
 */
export function api(
  port: number,
  method: string,
  path: string,
  opts: { token?: string; body?: object | string; headers?: Record<string, string>; timeoutMs?: number } = {},
): Promise<ApiResult> {
  const timeoutMs = opts.timeoutMs ?? 15_000;
  const payload = opts.body === undefined ? null : Buffer.from(typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body));
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`;
  if (payload) headers['content-length'] = String(payload.length);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body,
          json<T>() {
            try {
              return JSON.parse(body.toString('utf8')) as T;
            } catch {
              throw new Error(`${method} ${path}: HTTP ${res.statusCode}, not JSON: ${body.toString('utf8').slice(0, 300)}`);
            }
          },
        });
      });
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`${method} ${path} on port ${port}: no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(payload ?? undefined);
  });
}
