import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { keepOnTheBox, launchChromium, newPageLog, watchPage } from '../helpers/chromium';
import { startService, stopAllServices, type ServiceProcess } from '../helpers/service-process';
import { waitFor } from '../helpers/wait';

/**
 * The dashboard's Recording card and virtual soundcheck banner in a real
 * Chromium against the real service: unlock with the admin token, record
 * with the button while the elapsed time runs, set a marker, stop, download
 * a file by its link, play the take as the stage (the page says so plainly)
 * and go back to live.
 */

const TOKEN = 'dash-rec-token';
const root = mkdtempSync(path.join(os.tmpdir(), 'rec-dash-'));
let svc: ServiceProcess;
let browser: Browser;
let page: Page;
let phone: Page;
const log = newPageLog();

before(async () => {
  svc = await startService({ label: 'rec-dashboard', config: { capture: { device: 'test-signal', channels: 4 }, admin: { token: TOKEN }, recording: { drives: [root] } } });
  browser = await launchChromium();
  const context = await browser.newContext({ viewport: { width: 412, height: 915 } });
  await keepOnTheBox(context, log);
  page = await context.newPage();
  watchPage(page, log);
  page.on('dialog', (d) => void d.accept());
  await page.goto(`http://127.0.0.1:${svc.port}/`);
  // A musician's phone on the listener page, to see what the box tells it.
  phone = await context.newPage();
  watchPage(phone, log);
  await phone.goto(`http://127.0.0.1:${svc.port}/listen/`);
});

after(async () => {
  await browser?.close();
  await stopAllServices();
  rmSync(root, { recursive: true, force: true });
});

const text = async (sel: string): Promise<string> => (await page.textContent(sel)) ?? '';
const visible = (sel: string): Promise<boolean> => page.isVisible(sel);

test('record from the dashboard, then play the take as the stage and go back to live', async () => {
  await waitFor(async () => (await text('#rec-state')) === 'idle', { timeoutMs: 10_000, what: 'the Recording card to show "idle"' });
  assert.match(await text('#rec-drive'), /recordings \(state-dir/);
  assert.match(await text('#rec-left'), /with every input$/);
  assert.equal(await visible('#rec-controls'), false, 'locked until the token is given');

  await page.fill('#rec-token', 'not-the-token');
  await page.click('#rec-unlock-btn');
  await waitFor(async () => (await text('#rec-msg')).startsWith('wrong admin token'), { timeoutMs: 5000, what: 'the wrong token refused' });
  assert.equal(await visible('#rec-controls'), false);
  await page.fill('#rec-token', TOKEN);
  await page.click('#rec-unlock-btn');
  await waitFor(() => visible('#rec-controls'), { timeoutMs: 5000, what: 'the controls after unlocking' });

  await page.fill('#rec-name', 'Dashboard take');
  await page.click('#rec-start');
  await waitFor(async () => (await text('#rec-state')) === '● REC', { timeoutMs: 10_000, what: 'the REC state' });
  await waitFor(async () => (await text('#rec-elapsed')) === '0:02', { timeoutMs: 10_000, what: 'the elapsed time to run' });
  assert.equal(await text('#rec-take'), 'Dashboard take');
  await waitFor(async () => ((await phone.textContent('#source')) ?? '').endsWith('· ● REC'), { timeoutMs: 5000, what: 'the phone to show that the box records' });
  await page.click('#rec-marker');
  await waitFor(async () => (await text('#rec-msg')).startsWith('Marker 1 at 0:0'), { timeoutMs: 5000, what: 'the marker confirmed' });
  await page.click('#rec-stop');
  await waitFor(async () => (await text('#rec-msg')).startsWith('stopped: '), { timeoutMs: 10_000, what: 'the stop confirmed' });
  await waitFor(async () => (await text('#rec-state')) === 'idle', { timeoutMs: 5000, what: 'idle again' });

  const take = page.locator('#takes .take').first();
  await waitFor(async () => ((await take.getAttribute('data-take-id')) ?? '').endsWith('_Dashboard take'), { timeoutMs: 10_000, what: 'the take in the list' });
  assert.match((await take.textContent()) ?? '', /1 marker\(s\)/);
  // A file link works without the token header (it is signed), and is the file.
  const href = await take.locator('.files a').first().getAttribute('href');
  const got = await page.evaluate(async (u) => {
    const r = await fetch(u!);
    return { status: r.status, type: r.headers.get('content-type'), size: (await r.arrayBuffer()).byteLength };
  }, href);
  assert.deepEqual([got.status, got.type], [200, 'audio/wav']);
  assert.ok(got.size > 44 * 1000, `${got.size} bytes`);

  assert.equal(await visible('#playback-banner'), false);
  await take.locator('button', { hasText: 'Play as the stage' }).click();
  await waitFor(() => visible('#playback-banner'), { timeoutMs: 10_000, what: 'the playback banner' });
  assert.match(await text('#playback-banner'), /Playing a recording, not the stage/i);
  assert.ok((await text('#pb-take')).endsWith('_Dashboard take'));
  assert.equal(await page.isDisabled('#rec-start'), true, 'no recording while a take plays');
  await waitFor(async () => (await text('#capture-kind')) === 'take', { timeoutMs: 5000, what: 'the Capture card to say "take"' });
  await waitFor(async () => ((await phone.textContent('#source')) ?? '').startsWith('playing a recording, not the stage · running'), { timeoutMs: 5000, what: 'the phone to say it hears a recording' });
  await page.click('#pb-toggle');
  await waitFor(async () => (await text('#pb-state')) === 'paused', { timeoutMs: 5000, what: 'paused' });
  await page.click('#pb-live');
  await waitFor(async () => !(await visible('#playback-banner')), { timeoutMs: 10_000, what: 'the banner gone' });
  await waitFor(async () => (await text('#capture-kind')) === 'test-signal', { timeoutMs: 5000, what: 'live again' });
  assert.equal(await phone.textContent('#source'), 'running · 4 ch · 48 kHz');

  await take.locator('button', { hasText: 'Delete' }).click();
  await waitFor(async () => (await page.locator('#takes .take').count()) === 0, { timeoutMs: 10_000, what: 'the take deleted' });
  assert.deepEqual(log.foreign, []);
  assert.deepEqual(log.pageErrors.filter((e) => !/401|Unauthorized/.test(e)), []);
});
