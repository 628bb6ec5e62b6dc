import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startService, stopAllServices, type ServiceProcess } from '../helpers/service-process';
import { removeFixtures, startOnFixture } from '../helpers/alsa-service';
import { NotifySocket, type NotifyMessage } from '../helpers/notify-socket';
import { getStatus, httpRequest, type Status } from '../helpers/http-client';
import { waitFor, withTimeout } from '../helpers/wait';

/**
 * The systemd notify protocol, spoken for real: the service sends datagrams
 * to an AF_UNIX socket named by NOTIFY_SOCKET, as under systemd. systemd
 * itself cannot run as PID 1 in this container, so a python3 receiver
 * stands in for it; what systemd does with the messages (start timeouts,
 * watchdog kills, restarts) is not exercised here.
 */

const sockets: NotifySocket[] = [];
after(async () => {
  await stopAllServices();
  removeFixtures();
  for (const s of sockets) s.close();
});

async function openSocket(abstract = false): Promise<NotifySocket> {
  const s = await NotifySocket.open({ abstract });
  sockets.push(s);
  return s;
}

/** WATCHDOG_USEC for the tests: 1 s, so the service checks every 250 ms. */
const WATCHDOG_USEC = '1000000';

/**
 * Waits until no WATCHDOG=1 came for `quietMs` (up to timeoutMs). Silence is the point here and it has no
 * event of its own: the watchdog's checks send nothing while the verdict stays the same, so only time shows
 * that the pings stopped (for longer than WATCHDOG_USEC: systemd would have acted).
 */
async function waitForPingsToStop(ns: NotifySocket, quietMs: number, timeoutMs: number): Promise<void> {
  await waitFor(
    () => {
      const pings = ns.with('WATCHDOG');
      const last = pings[pings.length - 1];
      return last !== undefined && performance.now() - last.at >= quietMs;
    },
    { timeoutMs, what: `no WATCHDOG=1 for ${quietMs} ms`, intervalMs: 100, describe: () => `${ns.with('WATCHDOG').length} pings so far` },
  );
}

describe('systemd notify protocol', () => {
  test('without NOTIFY_SOCKET the service runs and says systemd is off', async () => {
    const svc = await startService({ label: 'no-systemd', config: { capture: { device: 'test-signal', channels: 2 } } });
    const st = (await getStatus(svc.port)) as unknown as { systemd: { notify: boolean; ready: boolean; watchdogMs: number | null } };
    assert.equal(st.systemd.notify, false);
    assert.equal(st.systemd.watchdogMs, null);
    const stop = await svc.stop();
    assert.equal(stop.code, 0, svc.describe());
  });

  test('READY=1 comes once the server accepts connections, then WATCHDOG=1 periodically, STATUS= lines, and STOPPING=1 last on SIGTERM', async () => {
    const ns = await openSocket();
    const svc = await startService({
      label: 'notify-path',
      env: { NOTIFY_SOCKET: ns.address, WATCHDOG_USEC },
      config: { capture: { device: 'test-signal', channels: 4 } },
    });
    const ready = await ns.waitFor((m) => m.fields.READY === '1', 10000, 'READY=1');
    // The STATUS sent with READY names the port; it already accepts requests.
    const port = Number(/on port (\d+)/.exec(ready.fields.STATUS ?? '')?.[1]);
    assert.equal(port, svc.port, `READY's STATUS: ${ready.raw}`);
    assert.equal((await httpRequest(port, 'GET', '/api/status')).status, 200);
    assert.match(ready.fields.STATUS!, /streaming the built-in test signal \(4 ch\)/);
    // Nothing before READY=1 claimed readiness, and nothing pinged before it.
    const readyIdx = ns.messages.indexOf(ready);
    assert.deepEqual(ns.messages.slice(0, readyIdx).filter((m) => 'WATCHDOG' in m.fields), []);
    await waitFor(() => ns.with('WATCHDOG', readyIdx).length >= 4, { timeoutMs: 10000, what: '4 WATCHDOG=1 pings after READY' });
    const st = (await getStatus(svc.port)) as unknown as { systemd: { notify: boolean; ready: boolean; watchdogMs: number; healthy: boolean } };
    assert.deepEqual([st.systemd.notify, st.systemd.ready, st.systemd.watchdogMs, st.systemd.healthy], [true, true, 1000, true]);
    const stop = await svc.stop();
    assert.equal(stop.code, 0, svc.describe());
    // The service has exited, so all it ever sent is queued on the socket: after the sync it is all here.
    await ns.sync();
    const stopping = ns.messages.findIndex((m) => m.fields.STOPPING === '1');
    assert.ok(stopping > readyIdx, `STOPPING=1 after READY=1: ${JSON.stringify(ns.messages.map((m) => m.raw))}`);
    assert.deepEqual(ns.messages.slice(stopping + 1).map((m) => m.raw), [], 'nothing after STOPPING=1');
  });

  test('an abstract NOTIFY_SOCKET (@name) works too', async () => {
    const ns = await openSocket(true);
    const svc = await startService({ label: 'notify-abstract', env: { NOTIFY_SOCKET: ns.address }, config: { capture: { device: 'test-signal', channels: 2 } } });
    await ns.waitFor((m) => m.fields.READY === '1', 10000, 'READY=1 on the abstract socket');
    // No WATCHDOG_USEC: no watchdog. A watchdog pings the moment it starts (right after READY=1), so none
    // between READY=1 and STOPPING=1, with everything the service sent in hand, means none was started.
    const st = (await getStatus(svc.port)) as unknown as { systemd: { notify: boolean; watchdogMs: number | null; healthy: boolean | null } };
    assert.deepEqual([st.systemd.notify, st.systemd.watchdogMs, st.systemd.healthy], [true, null, null]);
    assert.equal((await svc.stop()).code, 0, svc.describe());
    await ns.sync();
    assert.ok(ns.messages.some((m) => m.fields.STOPPING === '1'), `STOPPING=1 on the abstract socket: ${JSON.stringify(ns.messages.map((m) => m.raw))}`);
    assert.deepEqual(ns.with('WATCHDOG'), []);
  });

  test('with a missing device READY=1 still comes (the box serves and retries), and the watchdog is fed while the retry loop turns', async () => {
    const ns = await openSocket();
    const svc = await startService({
      label: 'notify-nodevice',
      env: { NOTIFY_SOCKET: ns.address, WATCHDOG_USEC },
      config: { capture: { device: 'nosuchpcm', channels: 2, format: 'S16_LE', retryInitialMs: 100, retryMaxMs: 400 } },
    });
    const ready = await ns.waitFor((m) => m.fields.READY === '1', 10000, 'READY=1');
    assert.match(ready.fields.STATUS!, /capture (no-device|error) on nosuchpcm/);
    const from = ns.messages.length;
    const before = await getStatus(svc.port);
    // Pings keep coming while the retry loop turns (three more attempts) and the device stays missing.
    let last: Status | undefined;
    await waitFor(
      async () => {
        last = await getStatus(svc.port);
        return ns.with('WATCHDOG', from).length >= 5 && last.capture.reopenCount >= before.capture.reopenCount + 3;
      },
      { timeoutMs: 15000, what: '5 WATCHDOG=1 pings and 3 more open attempts while the device is missing', describe: () => `${ns.with('WATCHDOG', from).length} pings; ${JSON.stringify(last?.capture)}` },
    );
    assert.ok(['no-device', 'error', 'retrying', 'starting'].includes(last!.capture.state), `still waiting for the device: ${JSON.stringify(last!.capture)}`);
    assert.equal(ns.with('STATUS', from).find((m) => m.fields.STATUS!.startsWith('UNHEALTHY')), undefined, 'never unhealthy while retrying');
    await svc.stop();
  });

  test('a capture that stalls until its source gives up (reader threads stuck in the driver) stops the pings, and they resume when audio flows again', async () => {
    const ns = await openSocket();
    const { fx, svc } = await startOnFixture({
      format: 'S16_LE',
      channels: 2,
      periodFrames: 128,
      pcmName: 'sbwatchdog',
      // 500 ms, not less: the fixture's feeder runs in this process, and on a loaded machine it can fall a few
      // hundred ms behind, which a shorter stall timeout takes for a lost device before READY=1.
      capture: { stallTimeoutMs: 500, retryInitialMs: 100, retryMaxMs: 200 },
      env: { NOTIFY_SOCKET: ns.address, WATCHDOG_USEC },
    });
    const ready = await ns.waitFor((m) => m.fields.READY === '1', 10000, 'READY=1');
    assert.match(ready.fields.STATUS!, /capturing sbwatchdog \(2 ch S16_LE 48000 Hz\)/);
    await waitFor(() => ns.with('WATCHDOG').length >= 3, { timeoutMs: 10000, what: '3 pings while capturing' });
    // The FIFO stops feeding: every read blocks in the driver.
    fx.pause();
    await waitForPingsToStop(ns, 2500, 30000);
    const unhealthy = ns.messages.find((m) => (m.fields.STATUS ?? '').startsWith('UNHEALTHY'));
    assert.ok(unhealthy, `an UNHEALTHY STATUS=: ${JSON.stringify(ns.messages.slice(-5).map((m) => m.raw))}`);
    assert.match(unhealthy.fields.STATUS!, /stuck in the ALSA driver/);
    assert.equal(svc.exit, null, 'the service itself stays up: restarting is systemd\'s job');
    // Feeding again lets the stuck readers return; the source reopens and pings resume.
    const from = ns.messages.length;
    fx.start();
    await ns.waitFor((m) => m.fields.WATCHDOG === '1', 15000, 'WATCHDOG=1 again after the device delivers', from);
    await svc.stop();
  });

  test('a blocked event loop sends no pings while blocked (blocked through the inspector, no test hook in the service)', async () => {
    const ns = await openSocket();
    const svc = await startService({
      label: 'notify-blocked',
      nodeArgs: ['--inspect=127.0.0.1:0'],
      env: { NOTIFY_SOCKET: ns.address, WATCHDOG_USEC },
      config: { capture: { device: 'test-signal', channels: 2 } },
    });
    await ns.waitFor((m) => m.fields.READY === '1', 10000, 'READY=1');
    await waitFor(() => ns.with('WATCHDOG').length >= 3, { timeoutMs: 10000, what: '3 pings' });
    const before = ns.with('WATCHDOG').length;
    await blockEventLoop(svc, 3000);
    const unblocked = performance.now();
    await ns.waitFor((m) => m.fields.WATCHDOG === '1' && m.at > unblocked, 5000, 'pings to resume after the block');
    const pings = ns.with('WATCHDOG').slice(before - 1);
    const gaps = pings.slice(1).map((m, i) => m.at - pings[i]!.at);
    // Pings come every 250 ms; the gap around the block spans it. Longer than WATCHDOG_USEC (1 s): systemd
    // would have killed the service with SIGABRT and restarted it (Restart=on-failure in the unit).
    assert.ok(Math.max(...gaps) >= 2500, `longest gap between pings ${Math.round(Math.max(...gaps))} ms; gaps ${gaps.map(Math.round)}`);
    assert.ok(Math.max(...gaps) > Number(WATCHDOG_USEC) / 1000, 'the silence outlasts the watchdog timeout');
    await svc.stop();
  });
});

/** Runs a busy loop of `ms` on the service's main thread via the inspector protocol; resolves when it has run. */
async function blockEventLoop(svc: ServiceProcess, ms: number): Promise<void> {
  const url = await waitFor(() => /Debugger listening on (ws:\/\/\S+)/.exec(svc.stderr)?.[1], { timeoutMs: 5000, what: 'inspector URL on stderr' });
  const ws = new WebSocket(url);
  await withTimeout(new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject)), 5000, 'inspector connection');
  const done = new Promise<NotifyMessage | unknown>((resolve) => ws.on('message', (d) => (JSON.parse(String(d)) as { id?: number }).id === 1 && resolve(d)));
  ws.send(JSON.stringify({ id: 1, method: 'Runtime.evaluate', params: { expression: `{ const t = Date.now() + ${ms}; while (Date.now() < t); }` } }));
  await withTimeout(done, ms + 10000, 'busy loop to finish');
  ws.close();
}
