import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startService, stopAllServices, type ServiceProcess } from '../helpers/service-process';
import { StreamClient } from '../helpers/stream-client';
import { getStatus } from '../helpers/http-client';
import { waitFor, withTimeout } from '../helpers/wait';

/**
 * The dashboards' WebSocket at /api/live: its own limit, never a stream
 * client, status about once a second and channel peaks about ten times a
 * second, refused to pages of other sites.
 */

let svc: ServiceProcess;
before(async () => {
  svc = await startService({
    label: 'live-feed',
    config: {
      capture: { device: 'test-signal', channels: 4 },
      stream: { helloTimeoutMs: 300, maxClients: 1 },
      dashboard: { maxViewers: 2, latencyAmberMs: 5, latencyRedMs: 9 },
    },
  });
});
after(() => stopAllServices());

interface Viewer {
  ws: WebSocket;
  messages: { type: string; [k: string]: unknown }[];
  closed: Promise<{ code: number; reason: string }>;
}

function viewer(headers: Record<string, string> = {}): Promise<Viewer> {
  const ws = new WebSocket(`ws://127.0.0.1:${svc.port}/api/live`, { headers });
  const v: Viewer = {
    ws,
    messages: [],
    closed: new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() }))),
  };
  ws.on('message', (data) => v.messages.push(JSON.parse(data.toString()) as Viewer['messages'][number]));
  return withTimeout(
    new Promise((resolve, reject) => {
      ws.once('open', () => resolve(v));
      ws.once('error', reject);
    }),
    5000,
    'dashboard WebSocket open',
  );
}

const levels = (v: Viewer) => v.messages.filter((m) => m.type === 'levels') as unknown as { peakDb: (number | null)[] }[];
const statuses = (v: Viewer) => v.messages.filter((m) => m.type === 'status') as unknown as { status: Record<string, any> }[];

describe('live feed', () => {
  // How often it pushes is counted on a mocked clock in live-feed-schedule.test.ts; here the pushes' content.
  test('pushes the status at once and then again, and the test signal\'s peaks (-12 dBFS)', async () => {
    const v = await viewer();
    await waitFor(() => statuses(v).length >= 1, { timeoutMs: 2000, what: 'the first status push' });
    await waitFor(() => statuses(v).length >= 2 && levels(v).length >= 10, {
      timeoutMs: 10000,
      what: 'a second status push and ten level pushes',
      describe: () => `${statuses(v).length} status, ${levels(v).length} levels`,
    });
    const s = statuses(v);
    const st = s[s.length - 1]!.status;
    assert.equal(st.capture.kind, 'test-signal');
    assert.deepEqual(
      { viewers: st.dashboard.viewers, maxViewers: st.dashboard.maxViewers, amber: st.dashboard.latencyAmberMs, red: st.dashboard.latencyRedMs },
      { viewers: 1, maxViewers: 2, amber: 5, red: 9 },
    );
    assert.ok(Array.isArray(st.events) && st.events.some((e: { kind: string }) => e.kind === 'service-started'), JSON.stringify(st.events));
    assert.equal(typeof st.process.rssMB, 'number');
    const l = levels(v);
    const last = l[l.length - 1]!.peakDb;
    assert.equal(last.length, 4);
    for (const db of last) assert.ok(typeof db === 'number' && db > -12.5 && db < -11.5, `peak ${db} dBFS; the test signal peaks at -12`);
    v.ws.close();
    await v.closed;
  });

  test('a dashboard is not a stream client: no hello needed, not counted, not limited by stream.maxClients', async () => {
    const v = await viewer();
    // A stream client that connects after the dashboard and sends nothing is closed by the hello timeout
    // (300 ms); the dashboard, older and silent too, is not. The pong, written after that sweep, says so.
    const silent = await StreamClient.connect(svc.port, { label: 'silent' });
    assert.equal((await silent.waitForClose(5000)).code, 4001);
    await withTimeout(new Promise((resolve) => v.ws.once('pong', resolve).ping()), 5000, 'pong on the dashboard socket');
    assert.equal(v.ws.readyState, WebSocket.OPEN);
    // stream.maxClients is 1: a stream client still gets in with a dashboard open.
    const c = await StreamClient.open(svc.port, 'musician');
    await c.subscribe([0, 1], 'pcm16');
    await c.waitForPackets(20);
    const s = await getStatus(svc.port);
    assert.equal((s as unknown as { server: { clients: number } }).server.clients, 1);
    assert.deepEqual(s.clients.map((x) => x.clientId), ['musician']);
    assert.equal((s as unknown as { dashboard: { viewers: number } }).dashboard.viewers, 1);
    const n = levels(v).length;
    await waitFor(() => levels(v).length > n + 3, { timeoutMs: 2000, what: 'levels still arriving' });
    // Its coming and going are in the recent events the dashboard shows. They come from a once-a-second look
    // at the client list, so the musician stays until that look has seen it (a visit between two looks leaves
    // no trace, by design).
    let kinds: string[] = [];
    const musicianEvents = async (kind: string): Promise<boolean> => {
      const events = (await getStatus(svc.port)) as unknown as { events: { kind: string; fields: { id?: string } }[] };
      kinds = events.events.filter((e) => e.fields.id === 'musician').map((e) => e.kind);
      return kinds.includes(kind);
    };
    await waitFor(() => musicianEvents('client-joined'), { timeoutMs: 5000, what: 'client-joined of "musician" in status.events', describe: () => JSON.stringify(kinds) });
    c.close();
    await c.waitForClose();
    await waitFor(() => musicianEvents('client-left'), { timeoutMs: 5000, what: 'client-left of "musician" in status.events', describe: () => JSON.stringify(kinds) });
    assert.deepEqual(kinds, ['client-joined', 'client-left']);
    v.ws.close();
    await v.closed;
  });

  test('more than dashboard.maxViewers dashboards: the next is closed with 1013 and the reason', async () => {
    const a = await viewer();
    const b = await viewer();
    const c = await viewer();
    assert.deepEqual(await withTimeout(c.closed, 5000, 'third dashboard closed'), { code: 1013, reason: 'too many dashboards: 2 open' });
    assert.equal(a.ws.readyState, WebSocket.OPEN);
    assert.equal(b.ws.readyState, WebSocket.OPEN);
    a.ws.close();
    await a.closed;
    // A place freed is a place taken.
    const d = await viewer();
    await waitFor(() => statuses(d).length >= 1, { timeoutMs: 2000, what: 'status for the dashboard that took the freed place' });
    b.ws.close();
    d.ws.close();
    await Promise.all([b.closed, d.closed]);
  });

  test('a page of another site (foreign Origin) is refused with 403; the box\'s own origin is accepted', async () => {
    await assert.rejects(viewer({ origin: 'http://evil.example' }), /Unexpected server response: 403/);
    const own = await viewer({ origin: `http://127.0.0.1:${svc.port}` });
    own.ws.close();
    await own.closed;
  });

  test('stream clients connect on any other path exactly as before', async () => {
    const c = await StreamClient.open(svc.port, 'after-dashboards');
    await c.subscribe([3], 'pcm16');
    await c.waitForPackets(10);
    c.close();
  });
});
