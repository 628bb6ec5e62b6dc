import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { startService, stopAllServices, type ServiceProcess } from '../helpers/service-process';
import { httpRequest } from '../helpers/http-client';

/** The dashboard's files on the stream port: types, caching, 304, methods, and no way out of the folder. */

let svc: ServiceProcess;
before(async () => {
  svc = await startService({ label: 'dashboard-routes', config: { capture: { device: 'test-signal', channels: 2 } } });
});
after(() => stopAllServices());

function get(path: string, headers: http.OutgoingHttpHeaders = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: svc.port, method: 'GET', path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.setTimeout(5000, () => req.destroy(new Error(`GET ${path}: no answer within 5 s`)));
    req.on('error', reject);
    req.end();
  });
}

/** The asset URLs the page refers to, e.g. "/dashboard.js?v=…". */
async function assetUrls(): Promise<string[]> {
  const page = await get('/');
  // Relative references are the dashboard's own files; absolute ones (the listener, its QR code) are other routes.
  return [...page.body.matchAll(/(?:src|href)="([^"/][^"]*)"/g)].map((m) => '/' + m[1]!);
}

describe('dashboard routes', () => {
  test('GET / is the page: HTML, revalidated on every load (no-cache + ETag), with a CSP allowing only the box', async () => {
    const res = await get('/');
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-type'], 'text/html; charset=utf-8');
    assert.equal(res.headers['cache-control'], 'no-cache');
    assert.match(String(res.headers.etag), /^"[0-9a-f]{16}"$/);
    assert.match(String(res.headers['content-security-policy']), /default-src 'none'; script-src 'self'; style-src 'self'/);
    assert.equal(res.headers['x-content-type-options'], 'nosniff');
    assert.match(res.body, /<title>stagebox<\/title>/);
    assert.equal(Number(res.headers['content-length']), Buffer.byteLength(res.body));
    const same = await get('/index.html');
    assert.equal(same.headers.etag, res.headers.etag);
  });

  test('every file the page refers to is served with its type and, at its versioned URL, cached for a year', async () => {
    const urls = await assetUrls();
    assert.deepEqual(urls.map((u) => u.replace(/\?v=[0-9a-f]{16}$/, '')).sort(), ['/dashboard.css', '/dashboard.js', '/favicon.svg']);
    const types: Record<string, string> = { css: 'text/css; charset=utf-8', js: 'text/javascript; charset=utf-8', svg: 'image/svg+xml' };
    for (const url of urls) {
      const res = await get(url);
      assert.equal(res.status, 200, url);
      assert.equal(res.headers['content-type'], types[url.replace(/\?.*/, '').split('.').pop()!], url);
      assert.equal(res.headers['cache-control'], 'public, max-age=31536000, immutable', url);
      assert.equal(res.headers.etag, `"${url.split('?v=')[1]}"`, `${url}: the version is the ETag`);
      const unversioned = await get(url.replace(/\?.*/, ''));
      assert.equal(unversioned.headers['cache-control'], 'no-cache', `${url} without its version is revalidated`);
      const stale = await get(url.replace(/\?v=.*/, '?v=0000000000000000'));
      assert.equal(stale.headers['cache-control'], 'no-cache', `${url} with an old version is revalidated`);
    }
  });

  test('If-None-Match with the current ETag answers 304 with no body; another tag gets the file', async () => {
    const first = await get('/');
    const etag = String(first.headers.etag);
    const again = await get('/', { 'if-none-match': etag });
    assert.equal(again.status, 304);
    assert.equal(again.body, '');
    assert.equal(again.headers.etag, etag);
    assert.equal(again.headers['cache-control'], 'no-cache');
    assert.equal((await get('/', { 'if-none-match': `"x", W/${etag}` })).status, 304);
    assert.equal((await get('/', { 'if-none-match': '"0000000000000000"' })).status, 200);
  });

  test('HEAD answers the headers of GET without a body; other methods get 405 with Allow', async () => {
    const head = await httpRequest(svc.port, 'HEAD', '/');
    assert.equal(head.status, 200);
    assert.equal(head.body, '');
    assert.equal(head.headers['content-type'], 'text/html; charset=utf-8');
    assert.ok(Number(head.headers['content-length']) > 100);
    for (const method of ['POST', 'PUT', 'DELETE']) {
      const res = await httpRequest(svc.port, method, '/dashboard.js');
      assert.equal(res.status, 405, method);
      assert.equal(res.headers.allow, 'GET, HEAD');
      assert.equal(res.body, `method ${method} not allowed on /dashboard.js; allowed: GET, HEAD`);
    }
  });

  test('no path reaches a file outside the folder: traversal, encoded dots and slashes, absolute paths all get 404', async () => {
    const paths = [
      '/../../etc/passwd',
      '/..%2f..%2fetc/passwd',
      '/..%2F..%2F..%2Fetc%2Fpasswd',
      '/%2e%2e/%2e%2e/etc/passwd',
      '/%2e%2e%2f%2e%2e%2fpackage.json',
      '/dashboard.js/../../package.json',
      '/dashboard.js%00.html',
      '//etc/passwd',
      '/etc/passwd',
      '/%2fetc%2fpasswd',
      '/..\\..\\package.json',
      '/web/dashboard/index.html',
      '/../package.json',
      '/index.html/',
      '/.',
    ];
    for (const p of paths) {
      const res = await get(p);
      assert.equal(res.status, 404, `${p}: ${res.status} ${res.body.slice(0, 100)}`);
      assert.doesNotMatch(res.body, /root:|"name": "stagebox"|<html/, p);
    }
  });

  test('the HTTP API still answers beside the page', async () => {
    const res = await get('/api/status');
    assert.equal(res.status, 200);
    assert.equal((JSON.parse(res.body) as { capture: { kind: string } }).capture.kind, 'test-signal');
    assert.equal((await get('/api/nothing')).status, 404);
  });
});
