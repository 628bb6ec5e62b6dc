import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { httpRequest, type HttpResult } from '../helpers/http-client';
import { startService, stopAllServices, type ServiceProcess } from '../helpers/service-process';
import { StreamClient } from '../helpers/stream-client';
import { listenUrl } from '../../src/web/listen-qr';

/**
 * The listener's HTTP side on the real service: the page and its files under
 * /listen/, the client library's browser build, the WASM Opus decoder, and
 * the dashboard's QR code route with its Host header checks.
 */

let svc: ServiceProcess;

before(async () => {
  svc = await startService({ label: 'listen-routes', config: { capture: { device: 'test-signal', channels: 4 } } });
});
after(async () => {
  await stopAllServices();
});

/** GET with a Host header of our choosing (Node sends any value without CR/LF as it is). */
function getWithHost(path: string, host: string | null): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const headers: http.OutgoingHttpHeaders = host === null ? {} : { host };
    const req = http.request({ host: '127.0.0.1', port: svc.port, path, headers, setHost: false, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.setTimeout(5000, () => req.destroy(new Error(`GET ${path}: no answer in 5 s`)));
    req.on('error', reject);
    req.end();
  });
}

describe('listener page routes', () => {
  test('/listen redirects to /listen/ (keeping the query), which serves the page with its security headers', async () => {
    const r = await httpRequest(svc.port, 'GET', '/listen?codec=opus');
    assert.equal(r.status, 308);
    assert.equal(r.headers.location, '/listen/?codec=opus');
    const page = await httpRequest(svc.port, 'GET', '/listen/');
    assert.equal(page.status, 200);
    assert.equal(page.headers['content-type'], 'text/html; charset=utf-8');
    const csp = String(page.headers['content-security-policy']);
    assert.match(csp, /script-src 'self' 'wasm-unsafe-eval';/);
    assert.match(csp, /connect-src 'self'/);
    assert.match(page.body, /<script type="module" src="listen\.js\?v=[0-9a-f]{16}"><\/script>/);
    assert.match(page.body, /<link rel="manifest" href="manifest\.webmanifest\?v=[0-9a-f]{16}">/);
  });

  test('the manifest makes it installable: name, standalone, start URL and scope /listen/, icons that are served', async () => {
    const r = await httpRequest(svc.port, 'GET', '/listen/manifest.webmanifest');
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'application/manifest+json');
    const m = JSON.parse(r.body) as { name: string; display: string; start_url: string; scope: string; icons: { src: string; sizes: string; type: string }[] };
    assert.equal(m.display, 'standalone');
    assert.equal(m.start_url, '/listen/');
    assert.equal(m.scope, '/listen/');
    assert.ok(m.icons.some((i) => i.sizes === '512x512' && i.type === 'image/png'));
    for (const icon of m.icons) {
      const res = await httpRequest(svc.port, 'GET', '/listen/' + icon.src);
      assert.equal(res.status, 200, icon.src);
      assert.equal(res.headers['content-type'], icon.type, icon.src);
    }
  });

  test('the client library and the WASM Opus decoder are served from the box as JavaScript', async () => {
    for (const p of ['/listen/client/jitter-buffer.js', '/listen/client/packet-decoder.js', '/listen/protocol/packet-header.js', '/listen/vendor/opus-decoder.min.js', '/listen/listen-worklet.js']) {
      const r = await httpRequest(svc.port, 'GET', p);
      assert.equal(r.status, 200, p);
      assert.equal(r.headers['content-type'], 'text/javascript; charset=utf-8', p);
    }
    const jb = await httpRequest(svc.port, 'GET', '/listen/client/jitter-buffer.js');
    assert.match(jb.body, /export class JitterBuffer/, 'an ES module, not CommonJS');
    assert.doesNotMatch(jb.body, /require\(/);
  });

  test('path traversal and unknown files get 404, and the service keeps serving', async () => {
    for (const p of [
      '/listen/../package.json',
      '/listen/..%2fpackage.json',
      '/listen/%2e%2e/package.json',
      '/listen/client/../../package.json',
      '/listen/vendor/../../node_modules/opus-decoder/package.json',
      '/listen/vendor/opus-decoder.min.js.map',
      '/listen/listen.js/',
      '/listen//etc/passwd',
    ]) {
      const r = await httpRequest(svc.port, 'GET', p);
      assert.equal(r.status, 404, `${p}: ${r.status} ${r.body.slice(0, 80)}`);
    }
    assert.equal((await httpRequest(svc.port, 'GET', '/listen/')).status, 200);
  });

  test('a non-GET on a listener file is 405 naming the allowed methods', async () => {
    const r = await httpRequest(svc.port, 'POST', '/listen/listen.js');
    assert.equal(r.status, 405);
    assert.equal(r.headers.allow, 'GET, HEAD');
  });
});

describe('listener QR code route', () => {
  test('GET /api/listen-qr.svg is an SVG QR code of http://<Host>/listen/, the URL also in x-listen-url', async () => {
    const r = await getWithHost('/api/listen-qr.svg', `127.0.0.1:${svc.port}`);
    assert.equal(r.status, 200);
    assert.equal(r.headers['content-type'], 'image/svg+xml');
    assert.equal(r.headers['x-listen-url'], `http://127.0.0.1:${svc.port}/listen/`);
    assert.match(r.body, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    const named = await getWithHost('/api/listen-qr.svg', 'stagebox.local:5100');
    assert.equal(named.headers['x-listen-url'], 'http://stagebox.local:5100/listen/');
    const v6 = await getWithHost('/api/listen-qr.svg', '[fe80::1]:5100');
    assert.equal(v6.headers['x-listen-url'], 'http://[fe80::1]:5100/listen/');
  });

  test('a junk Host header gets 400 saying what is allowed, with nothing of it reflected as markup', async () => {
    const client = await StreamClient.open(svc.port, 'qr-bystander', { keepPackets: false });
    await client.subscribe([0], 'pcm16');
    const before = client.packetCount;
    for (const host of ['evil"><script>alert(1)</script>', 'a b', 'user@host', 'host/path', 'host:99999', 'host:', '-bad-.example', 'x'.repeat(300)]) {
      const r = await getWithHost('/api/listen-qr.svg', host);
      assert.equal(r.status, 400, `Host ${JSON.stringify(host)}: ${r.status}`);
      assert.equal(r.headers['content-type'], 'text/plain; charset=utf-8');
      assert.equal(r.headers['x-content-type-options'], 'nosniff');
      assert.doesNotMatch(r.body, /[<>&]/, `body reflects markup: ${r.body}`);
      assert.match(r.body, /is not a host name, IPv4 or \[IPv6\] address with an optional port 1-65535/);
    }
    // No Host at all: Node's HTTP/1.1 server refuses the request itself (requireHostHeader), before any route.
    assert.equal((await getWithHost('/api/listen-qr.svg', null)).status, 400);
    const bad = await getWithHost('/api/listen-qr.svg', 'evil"><script>');
    assert.equal(bad.body, 'Host header "evil\\u0022\\u003e\\u003cscript\\u003e" is not a host name, IPv4 or [IPv6] address with an optional port 1-65535');
    // The box kept streaming and serving meanwhile.
    await client.waitForPackets(before + 100, 5000);
    assert.equal((await getWithHost('/api/listen-qr.svg', `127.0.0.1:${svc.port}`)).status, 200);
    client.close();
  });

  test('listenUrl accepts host names, IPv4 and [IPv6] with ports, and refuses the rest', () => {
    assert.equal(listenUrl('192.168.1.20:5100'), 'http://192.168.1.20:5100/listen/');
    assert.equal(listenUrl('stagebox'), 'http://stagebox/listen/');
    assert.throws(() => listenUrl('host:0'), RangeError);
    assert.throws(() => listenUrl('[::1'), RangeError);
    assert.throws(() => listenUrl(undefined), /no Host header/);
  });
});
