import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

/**
 * Debian's Chromium, driven by playwright-core, for the tests of the pages the
 * box serves: the browser, a context that may reach the box only (every other
 * request is aborted and recorded, as a stage box has no internet), and a log
 * of a page's errors.
 */

export const CHROMIUM = '/usr/bin/chromium';

/** What pages asked for (HTTP and WebSocket), what was not on the box, and their errors. */
export interface PageLog {
  requested: string[];
  foreign: string[];
  pageErrors: string[];
}

export function newPageLog(): PageLog {
  return { requested: [], foreign: [], pageErrors: [] };
}

/** --no-sandbox: the tests may run as root, where Chromium's sandbox refuses to start. */
export function launchChromium(extraArgs: string[] = []): Promise<Browser> {
  // Without WebRtcHideLocalIpsWithMdns off, a page that opens a peer connection announces an mDNS name by multicast
  // on every interface: tests stay on loopback, and the box ignores such candidates anyway.
  return chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-features=WebRtcHideLocalIpsWithMdns', ...extraArgs] });
}

function isLoopback(url: string): boolean {
  const host = new URL(url).hostname;
  return host === '127.0.0.1' || host === 'localhost' || host === '[::1]';
}

/** Lets the context's pages reach loopback only; everything else is aborted and logged as foreign. */
export async function keepOnTheBox(context: BrowserContext, log: PageLog): Promise<void> {
  await context.route('**/*', (route) => {
    const url = route.request().url();
    log.requested.push(url);
    if (isLoopback(url)) return route.continue();
    log.foreign.push(url);
    return route.abort();
  });
}

/** Logs the page's WebSockets (route() does not see them), uncaught errors and console errors. */
export function watchPage(page: Page, log: PageLog): void {
  page.on('websocket', (ws) => {
    log.requested.push(ws.url());
    if (!isLoopback(ws.url())) log.foreign.push(ws.url());
  });
  page.on('pageerror', (err) => log.pageErrors.push(err.message));
  page.on('console', (msg) => {
    if (msg.type() === 'error') log.pageErrors.push(msg.text());
  });
}
