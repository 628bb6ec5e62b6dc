import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { startService, stopAllServices, writeTempFile } from '../helpers/service-process';
import { getStatus, type Status } from '../helpers/http-client';
import { NotifySocket } from '../helpers/notify-socket';
import { waitFor } from '../helpers/wait';
import { plugFakeUsbCard, unplugFakeUsbCard } from '../helpers/fake-usb-card';

/**
 * SIGHUP (systemctl reload, sent by the udev rule when a USB audio interface
 * comes or goes) makes the service probe the sound cards again, without a
 * restart. No USB card can be plugged into this machine, so the probe reads
 * a fake /proc/asound (STAGEBOX_PROC_ASOUND); its PCM does not open, which is
 * enough to see the service switch to it and retry it.
 */

const sockets: NotifySocket[] = [];
after(async () => {
  await stopAllServices();
  for (const s of sockets) s.close();
});

describe('SIGHUP re-probes the sound cards', () => {
  test('with capture.device "auto", a USB interface plugged in after start replaces the test signal; unplugged, it is retried (silence, not the tone)', async () => {
    const root = path.dirname(writeTempFile('.keep', ''));
    const ns = await NotifySocket.open();
    sockets.push(ns);
    const svc = await startService({
      label: 'reprobe-auto',
      env: { STAGEBOX_PROC_ASOUND: root, NOTIFY_SOCKET: ns.address },
      config: { capture: { device: 'auto', retryInitialMs: 100, retryMaxMs: 200 } },
    });
    await ns.waitFor((m) => m.fields.READY === '1', 10000, 'READY=1');
    assert.equal((await getStatus(svc.port)).capture.kind, 'test-signal');
    // A SIGHUP with nothing new keeps the test signal.
    const before = ns.messages.length;
    svc.proc.kill('SIGHUP');
    await svc.waitForLog((l) => l.msg === 're-probed capture devices (SIGHUP)', 5000, 're-probe log line');
    assert.equal((await getStatus(svc.port)).capture.kind, 'test-signal');
    // systemd sees RELOADING=1 then READY=1 again.
    await ns.waitFor((m) => m.fields.READY === '1', 5000, 'READY=1 after RELOADING=1', before);
    const reload = ns.messages.slice(before).map((m) => Object.keys(m.fields)[0]);
    assert.deepEqual(reload.slice(0, 2), ['RELOADING', 'READY']);

    plugFakeUsbCard(root);
    svc.proc.kill('SIGHUP');
    let last: Status | undefined;
    await waitFor(
      async () => {
        last = await getStatus(svc.port);
        return last.capture.kind === 'alsa' && last.capture.device === 'hw:CARD=FakeUSB,DEV=0';
      },
      { timeoutMs: 10000, what: 'capture switched to the plugged USB card', describe: () => JSON.stringify(last?.capture) },
    );
    // Its PCM does not open here: the source waits for it, retrying.
    await waitFor(
      async () => {
        last = await getStatus(svc.port);
        return ['no-device', 'error'].includes(last.capture.state) && last.capture.reopenCount >= 2;
      },
      { timeoutMs: 10000, what: 'the USB card retried', describe: () => JSON.stringify(last?.capture) },
    );

    unplugFakeUsbCard(root);
    const n = svc.logs.length;
    svc.proc.kill('SIGHUP');
    const line = await svc.waitForLog((l) => l.msg === 're-probed capture devices (SIGHUP)' && svc.logs.indexOf(l) >= n, 5000, 'second re-probe');
    assert.equal(line.action, 'no USB interface found; keep retrying the last one');
    assert.equal((await getStatus(svc.port)).capture.kind, 'alsa');
    const stop = await svc.stop();
    assert.equal(stop.code, 0, svc.describe());
  });

  test('with a named device, SIGHUP retries it at once instead of at the end of its backoff', async () => {
    const svc = await startService({
      label: 'reprobe-named',
      config: { capture: { device: 'nosuchpcm', channels: 2, format: 'S16_LE', retryInitialMs: 60000, retryMaxMs: 60000 } },
    });
    let last: Status | undefined;
    await waitFor(
      async () => {
        last = await getStatus(svc.port);
        return last.capture.reopenCount >= 1 ? last : undefined;
      },
      { timeoutMs: 10000, what: 'the first failed attempt', describe: () => JSON.stringify(last?.capture) },
    );
    const first = last!.capture.reopenCount;
    svc.proc.kill('SIGHUP');
    await waitFor(
      async () => {
        last = await getStatus(svc.port);
        return last.capture.reopenCount > first;
      },
      { timeoutMs: 5000, what: 'a new attempt long before the 60 s backoff ends', describe: () => JSON.stringify(last?.capture) },
    );
    await svc.stop();
  });
});
