import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startService, stopAllServices, type ServiceProcess } from '../helpers/service-process';
import { StreamClient } from '../helpers/stream-client';
import { httpRequest } from '../helpers/http-client';
import { waitFor } from '../helpers/wait';

/** GET /healthz and GET /metrics on the real service (built-in test signal, and an ALSA device that does not exist). */

let svc: ServiceProcess;
before(async () => {
  svc = await startService({ label: 'metrics', config: { capture: { device: 'test-signal', channels: 8 }, stream: { heartbeatIntervalMs: 200 } } });
});
after(() => stopAllServices());

/** Parses the Prometheus text format into name{labels} → value, and the HELP/TYPE lines per metric name. */
function parseExposition(text: string): { samples: Map<string, number>; help: Map<string, string>; type: Map<string, string> } {
  const samples = new Map<string, number>();
  const help = new Map<string, string>();
  const type = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    let m = /^# HELP (\S+) (.+)$/.exec(line);
    if (m) {
      help.set(m[1]!, m[2]!);
      continue;
    }
    m = /^# TYPE (\S+) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (m) {
      type.set(m[1]!, m[2]!);
      continue;
    }
    m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (\S+)$/.exec(line);
    assert.ok(m, `not a valid exposition line: ${JSON.stringify(line)}`);
    samples.set(m[1]!, Number(m[2]));
  }
  return { samples, help, type };
}

async function scrape(port: number) {
  const r = await httpRequest(port, 'GET', '/metrics');
  assert.equal(r.status, 200, r.body);
  assert.match(String(r.headers['content-type']), /^text\/plain; version=0\.0\.4/);
  return parseExposition(r.body);
}

describe('/healthz', () => {
  test('200 with status ok while capturing', async () => {
    await waitFor(async () => (await httpRequest(svc.port, 'GET', '/healthz')).status === 200, { timeoutMs: 5000, what: 'healthy' });
    const r = await httpRequest(svc.port, 'GET', '/healthz');
    const body = JSON.parse(r.body) as { status: string; reasons: string[]; capture: { state: string } };
    assert.equal(body.status, 'ok');
    assert.deepEqual(body.reasons, []);
    assert.equal(body.capture.state, 'running');
    assert.equal((await httpRequest(svc.port, 'POST', '/healthz')).status, 405);
  });

  test('503 naming the device and why when the capture device is missing; the server still answers', async () => {
    const own = await startService({
      label: 'healthz-missing',
      config: { capture: { device: 'nosuchpcm', channels: 2, format: 'S16_LE', retryInitialMs: 100, retryMaxMs: 400 } },
    });
    const r = await httpRequest(own.port, 'GET', '/healthz');
    assert.equal(r.status, 503, r.body);
    const body = JSON.parse(r.body) as { status: string; reasons: string[] };
    assert.equal(body.status, 'unhealthy');
    assert.ok(body.reasons.some((x) => /^capture (no-device|retrying|error|starting) on nosuchpcm/.test(x)), JSON.stringify(body.reasons));
    assert.equal((await httpRequest(own.port, 'GET', '/api/status')).status, 200);
    await own.stop();
  });
});

describe('/metrics', () => {
  test('every metric has help text and a type; the capture, pool and latency figures are there with units in their names', async () => {
    const m = await scrape(svc.port);
    for (const name of m.type.keys()) assert.ok((m.help.get(name) ?? '').length > 10, `${name} has no help text`);
    assert.equal(m.samples.get('stagebox_capture_channels'), 8);
    assert.equal(m.samples.get('stagebox_capture_rate_hertz'), 48000);
    assert.equal(m.samples.get('stagebox_capture_state{state="running"}'), 1);
    assert.equal(m.samples.get('stagebox_capture_state{state="error"}'), 0);
    assert.equal(m.type.get('stagebox_capture_periods_total'), 'counter');
    assert.ok(m.samples.get('stagebox_capture_periods_total')! > 0);
    assert.ok(m.samples.has('stagebox_server_latency_seconds{quantile="0.99"}'));
    assert.ok(m.samples.has('stagebox_pool_size'));
    assert.ok([...m.samples.keys()].some((k) => k.startsWith('stagebox_info{') && k.includes('source="test-signal"')));
  });

  test('a client shows up with its round trip, bytes sent grow, and it is gone after it leaves', async () => {
    const before = (await scrape(svc.port)).samples.get('stagebox_sent_bytes_total') ?? 0;
    const c = await StreamClient.open(svc.port, 'metrics-phone');
    await c.subscribe([0, 1], 'pcm16');
    await c.waitForPackets(50);
    let m = await scrape(svc.port);
    await waitFor(
      async () => {
        m = await scrape(svc.port);
        return m.samples.has('stagebox_client_rtt_seconds{client="metrics-phone"}');
      },
      { timeoutMs: 5000, what: 'the client rtt series' },
    );
    assert.equal(m.samples.get('stagebox_clients'), 1);
    const rtt = m.samples.get('stagebox_client_rtt_seconds{client="metrics-phone"}')!;
    assert.ok(rtt >= 0 && rtt < 1, `rtt ${rtt} s`);
    assert.ok(m.samples.get('stagebox_sent_bytes_total')! > before, 'bytes sent grew');
    c.close();
    await waitFor(async () => !(await scrape(svc.port)).samples.has('stagebox_client_rtt_seconds{client="metrics-phone"}'), { timeoutMs: 5000, what: 'the series gone' });
  });
});
