import http from 'node:http';

export interface HttpResult {
  status: number;
  body: string;
}

/**
 * Where the bench reaches the service's HTTP API: a port on loopback, or a
 * Unix socket path (a service in a network namespace of the harness).
 */
export type HttpTarget = number | string;

/**
 * One request to the service, no keep-alive (nothing lingers between
 * scenarios), with a hard timeout covering connect and body.
 */
export function httpRequest(target: HttpTarget, method: 'GET' | 'POST', path: string, timeoutMs: number): Promise<HttpResult> {
  const where = typeof target === 'number' ? { host: '127.0.0.1', port: target } : { socketPath: target };
  return new Promise((resolve, reject) => {
    const req = http.request({ ...where, method, path, agent: false, headers: { connection: 'close' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') });
      });
      res.on('error', fail);
    });
    const timer = setTimeout(() => {
      req.destroy();
      reject(new Error(`${method} ${path}: no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    function fail(err: Error): void {
      clearTimeout(timer);
      reject(new Error(`${method} ${path}: ${err.message}`));
    }
    req.on('error', fail);
    req.end();
  });
}

export async function getJson(target: HttpTarget, path: string, timeoutMs: number): Promise<unknown> {
  const r = await httpRequest(target, 'GET', path, timeoutMs);
  if (r.status !== 200) throw new Error(`GET ${path}: HTTP ${r.status}: ${r.body.slice(0, 200)}`);
  try {
    return JSON.parse(r.body) as unknown;
  } catch {
    throw new Error(`GET ${path}: answer is not JSON: ${r.body.slice(0, 200)}`);
  }
}
