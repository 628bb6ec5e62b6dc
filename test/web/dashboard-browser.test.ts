import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { keepOnTheBox, launchChromium, newPageLog, watchPage } from '../helpers/chromium';
import { REPO_ROOT, startService, stopAllServices, type ServiceProcess } from '../helpers/service-process';
import { StreamClient } from '../helpers/stream-client';
import { waitFor } from '../helpers/wait';
import { getStatus } from '../helpers/http-client';

/**
 * The dashboard in a real headless Chromium (Debian's, driven by
 * playwright-core): one browser for every check in this file. The page
 * must load from the box alone, show clients as they come and go with a
 * latency each, and move its meters with the built-in test signal.
 */

const ADMIN_TOKEN = 'dashboard-admin-token-1';
export const OUTPUT_DIR = path.join(REPO_ROOT, 'test-output');

let svc: ServiceProcess;
let browser: Browser;
let page: Page;
const log = newPageLog();
const { requested, foreign, pageErrors } = log;

before(async () => {
  svc = await startService({
    label: 'dashboard-browser',
    // Pings every 200 ms, so a client's round trip is known almost at once. MQTT off: the System card must not need it.
    config: {
      capture: { device: 'test-signal', channels: 8 },
      stream: { heartbeatIntervalMs: 200, heartbeatTimeoutMs: 5000 },
      admin: { token: ADMIN_TOKEN },
      mqtt: { enabled: false },
      health: { systemIntervalS: 1 },
    },
  });
  browser = await launchChromium();
  const context = await browser.newContext({ viewport: { width: 412, height: 915 }, deviceScaleFactor: 1 });
  await keepOnTheBox(context, log);
  page = await context.newPage();
  watchPage(page, log);
  await page.goto(`http://127.0.0.1:${svc.port}/`);
});

after(async () => {
  await browser?.close();
  await stopAllServices();
});

/** The little of the DOM these checks read (the project compiles without the DOM lib). */
interface DomEl {
  dataset: Record<string, string | undefined>;
  textContent: string | null;
  style: { transform: string };
  querySelectorAll(selector: string): Iterable<DomEl>;
}

/** The client list as the page shows it. */
function shownClients(): Promise<{ id: string; rtt: string; level: string; text: string }[]> {
  return page.$$eval('#clients .client', (els) =>
    els.map((e) => {
      const el = e as unknown as DomEl;
      return { id: el.dataset.clientId ?? '', rtt: el.dataset.rttMs ?? '', level: el.dataset.latencyLevel ?? '', text: el.textContent ?? '' };
    }),
  );
}

/** Each meter's shown peak (null: no level shown) and the page's count of level updates. */
async function meters(): Promise<{ peaks: (number | null)[]; updates: number }> {
  return page.$eval('#meters', (e) => {
    const box = e as unknown as DomEl;
    return {
      peaks: [...box.querySelectorAll('.meter')].map((m) => (m.dataset.peakDb ? Number(m.dataset.peakDb) : null)),
      updates: Number(box.dataset.updates ?? 0),
    };
  });
}

describe('dashboard in Chromium', () => {
  test('the page goes live over its WebSocket and shows the capture state', async () => {
    await waitFor(async () => (await page.textContent('#conn')) === 'live', { timeoutMs: 10000, what: 'the connection badge to read "live"' });
    await waitFor(async () => (await page.textContent('#capture-state')) === 'running', { timeoutMs: 5000, what: 'capture state "running"' });
    assert.equal(await page.textContent('#capture-format'), '8 ch · 48 kHz · S32_LE · 128 frames');
  });

  // How often the feed pushes levels is counted on a mocked clock in live-feed-schedule.test.ts.
  test('the meters move with the test signal: every channel near its -12 dBFS peak, and they keep updating', async () => {
    const first = await waitFor(
      async () => {
        const m = await meters();
        return m.peaks.length === 8 && m.peaks.every((p) => p !== null) ? m : false;
      },
      { timeoutMs: 5000, what: 'eight meters showing a level' },
    );
    let seen = first;
    const later = await waitFor(
      async () => {
        seen = await meters();
        return seen.updates >= first.updates + 5 ? seen : false;
      },
      { timeoutMs: 5000, what: 'five more level updates on the page', describe: () => `${seen.updates - first.updates} more` },
    );
    for (const m of [first, later]) {
      for (const [ch, db] of m.peaks.entries()) assert.ok(db !== null && db > -20 && db < -6, `channel ${ch + 1} shows ${db} dBFS`);
    }
    const label = await page.getAttribute('.meter[data-channel="0"]', 'aria-label');
    assert.equal(label, 'Channel 1 peak level');
    const cover = await page.$eval('.meter[data-channel="0"] .cover', (e) => (e as unknown as DomEl).style.transform);
    assert.match(cover, /^scaleX\(0\.2\d*\)$/, 'at -12 dBFS of a -60..0 scale the unlit part is a fifth of the bar');
  });

  test('the meters carry the engineer\'s channel names and colours, as text (never markup), and follow a change', async () => {
    const eng = await StreamClient.open(svc.port, 'engineer', { keepPackets: false });
    let from = eng.messages.length;
    eng.send({ type: 'auth', token: ADMIN_TOKEN });
    await eng.waitForMessage('auth-ok', { from });
    from = eng.messages.length;
    eng.send({ type: 'set-metadata', channels: [{ ch: 0, name: 'Kick', color: '#ff8800' }, { ch: 2, name: '<b>Vox</b>' }] });
    await eng.waitForMessage('metadata', { from });
    // A string expression: this file compiles without the DOM's types.
    const label = (ch: number): Promise<{ name: string; text: string; html: string; color: string; aria: string | null } | null> =>
      page.evaluate(`(() => {
        const m = document.querySelector('#meters .meter[data-channel="${ch}"]');
        const l = m && m.querySelector('.ch');
        return m && l ? { name: m.dataset.name || '', text: l.textContent || '', html: l.innerHTML, color: getComputedStyle(l).borderRightColor, aria: m.getAttribute('aria-label') } : null;
      })()`);
    await waitFor(async () => (await label(0))?.name === 'Kick', { timeoutMs: 5000, what: 'channel 1 named Kick on the dashboard' });
    const kick = (await label(0))!;
    assert.equal(kick.text, '1 Kick');
    assert.equal(kick.color, 'rgb(255, 136, 0)');
    assert.equal(kick.aria, 'Channel 1 (Kick) peak level');
    const vox = (await label(2))!;
    assert.equal(vox.text, '3 <b>Vox</b>', 'the name is shown as typed');
    assert.ok(!vox.html.includes('<b>'), `the name is not parsed as markup: ${vox.html}`);
    assert.equal((await label(1))!.text, '2', 'an unnamed channel shows its number');
    from = eng.messages.length;
    eng.send({ type: 'set-metadata', channels: [{ ch: 0, name: 'Bass' }] });
    await eng.waitForMessage('metadata', { from });
    await waitFor(async () => (await label(0))?.name === 'Bass' && (await label(2))?.name === '', { timeoutMs: 5000, what: 'the renamed and the cleared channel' });
    eng.close();
  });

  test('clients appear as they connect, each with a latency value and indicator, and the screenshot is saved', async (t) => {
    const anna = await StreamClient.open(svc.port, 'phone-anna', { name: 'Anna (vocals)', keepPackets: false });
    await anna.subscribe([0, 1], 'pcm16');
    const ben = await StreamClient.open(svc.port, 'phone-ben', { name: 'Ben', keepPackets: false });
    await ben.subscribe([2, 3, 4], 'pcm24');
    let last: Awaited<ReturnType<typeof shownClients>> = [];
    await waitFor(
      async () => {
        last = await shownClients();
        return last.length === 2 && last.every((c) => c.rtt !== '');
      },
      { timeoutMs: 8000, what: 'both clients listed with a round-trip time', describe: () => JSON.stringify(last) },
    );
    assert.deepEqual(last.map((c) => c.id).sort(), ['phone-anna', 'phone-ben']);
    for (const c of last) {
      assert.ok(Number(c.rtt) >= 0 && Number(c.rtt) < 1000, `${c.id} rtt ${c.rtt}`);
      assert.ok(['green', 'amber', 'red'].includes(c.level), `${c.id} latency level ${c.level}`);
      assert.match(c.text, /\d+(\.\d)? ms/, `${c.id} shows its latency in ms: ${c.text}`);
    }
    assert.match(last.find((c) => c.id === 'phone-anna')!.text, /Anna \(vocals\).*pcm16 · ch 1,2/);
    await waitFor(async () => ((await page.textContent('#events')) ?? '').includes('phone-ben'), { timeoutMs: 3000, what: 'the join in recent events' });

    mkdirSync(OUTPUT_DIR, { recursive: true });
    const shot = path.join(OUTPUT_DIR, 'dashboard.png');
    await page.screenshot({ path: shot, fullPage: true });
    t.diagnostic(`screenshot: ${shot}`);

    ben.close();
    await waitFor(
      async () => {
        last = await shownClients();
        return last.length === 1 && last[0]!.id === 'phone-anna';
      },
      { timeoutMs: 5000, what: 'the client that left to disappear from the list', describe: () => JSON.stringify(last) },
    );
    anna.close();
    await waitFor(async () => (await shownClients()).length === 0 && (await page.isVisible('#no-clients')), {
      timeoutMs: 5000,
      what: 'an empty client list',
    });
  });

  test('the System card shows the system collector\'s CPU load and memory with MQTT off, and the temperature when the host has one', async () => {
    const shown = await waitFor(
      async () => {
        const cpu = (await page.textContent('#sys-cpu')) ?? '';
        const mem = (await page.textContent('#sys-mem')) ?? '';
        return /^\d+ %$/.test(cpu) && /^\d+ % used$/.test(mem) ? { cpu, mem } : undefined;
      },
      { timeoutMs: 10000, what: 'numbers for CPU and memory on the System card' },
    );
    const sys = (await getStatus(svc.port)).system!;
    assert.ok(sys.mem && shown.mem === `${Math.round(sys.mem.usedPct)} % used`, `card ${shown.mem}; status ${JSON.stringify(sys.mem)}`);
    const temp = await page.textContent('#sys-temp');
    if (sys.cpu?.tempC === null) assert.equal(temp, '—', 'this host reports no CPU temperature');
    else assert.match(temp ?? '', /^-?\d+(\.\d)? °C$/);
  });

  test('everything the page loaded came from the box, and it raised no error', () => {
    assert.deepEqual(foreign, [], `requests off the box: ${foreign.join(', ')}`);
    assert.ok(requested.some((u) => u.endsWith('/api/live')), `the live feed was used: ${requested.join(', ')}`);
    assert.ok(requested.some((u) => /\/dashboard\.js\?v=[0-9a-f]{16}$/.test(u)), requested.join(', '));
    assert.deepEqual(pageErrors, []);
  });
});
