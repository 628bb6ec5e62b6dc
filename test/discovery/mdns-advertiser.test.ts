import { after, afterEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { startService, stopAllServices, writeTempFile, type ServiceProcess } from '../helpers/service-process';
import { netnsUnavailable, TestNetns } from '../helpers/netns';
import { describe as describeService, MdnsBrowser, txtObject } from '../helpers/mdns-browser';
import { StreamClient } from '../helpers/stream-client';
import { plugFakeUsbCard } from '../helpers/fake-usb-card';
import { waitFor } from '../helpers/wait';
import { deviceIdFromHostname } from '../../src/health/mqtt-options';
import type { DiscoveryStatus } from '../../src/discovery/discovery-status';

/**
 * Real mDNS traffic between the real service and a separate DNS-SD browser
 * (another bonjour-service instance, as a phone would browse).
 *
 * Why a network namespace and not plain loopback: the service joins the mDNS
 * group on every interface it has and sends on the default one, which here
 * would be the machine's real network. Inside a namespace of the test's own
 * it has only its loopback and one end of a veth pair, so nothing leaves the
 * pair, and the service runs with its production defaults (no interface
 * option, no special build). The browser stays in the test's namespace and
 * joins the group on the veth's other end: a phone on the stage network. It
 * can then also reach the box at the address the mDNS answer gave. Needs
 * root; skipped with the reason otherwise.
 */

const why = netnsUnavailable();
const nets: TestNetns[] = [];
const browsers: MdnsBrowser[] = [];
const blockers: ChildProcess[] = [];

afterEach(async () => {
  // Each test leaves an empty stage: services first (they live in the namespaces), then the rest.
  await stopAllServices();
  for (const b of browsers.splice(0)) await b.close();
  for (const p of blockers.splice(0)) p.kill('SIGKILL');
  for (const n of nets.splice(0)) n.destroy();
});
after(async () => {
  await stopAllServices();
});

function stage(opts?: { multicastRoute?: boolean }): { ns: TestNetns; browser: MdnsBrowser } {
  const ns = TestNetns.create(opts);
  nets.push(ns);
  const browser = new MdnsBrowser(ns.hostAddr);
  browsers.push(browser);
  return { ns, browser };
}

/** A service inside `ns`, listening on every address there, mDNS on. */
function startBox(ns: TestNetns, label: string, config: Record<string, unknown> = {}, env: Record<string, string> = {}): Promise<ServiceProcess> {
  return startService({
    label,
    wrap: ns.wrapper,
    env,
    config: {
      server: { host: '0.0.0.0', port: 0 },
      capture: { device: 'test-signal', channels: 8 },
      mqtt: { enabled: false },
      discovery: { enabled: true },
      ...config,
    },
  });
}

function getJson<T>(host: string, port: number, urlPath: string, timeoutMs = 5000): Promise<T> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host, port, path: urlPath, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => {
        try {
          resolve(JSON.parse(body) as T);
        } catch (err) {
          reject(new Error(`GET http://${host}:${port}${urlPath}: not JSON (${(err as Error).message}): ${body.slice(0, 200)}`));
        }
      });
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`GET http://${host}:${port}${urlPath}: no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
  });
}

interface StatusDoc {
  discovery: DiscoveryStatus;
  capture: { periods: number; state: string };
}

function discoveryOf(ns: TestNetns, svc: ServiceProcess): Promise<DiscoveryStatus> {
  return getJson<StatusDoc>(ns.boxAddr, svc.port, '/api/status').then((s) => s.discovery);
}

const announced = (name: string) => (l: { msg?: string }) => l.msg === `mDNS: announced as "${name}"` || (l.msg ?? '').startsWith(`mDNS: announced as "${name}" (`);

describe('mDNS/DNS-SD announcement (real multicast in a network namespace)', { skip: why ?? false }, () => {
  test('a browser finds _stagebox._tcp with its TXT record and SRV port, and _http._tcp with the dashboard path; the answer leads to the box', async () => {
    const { ns, browser } = stage();
    const svc = await startBox(ns, 'box-a', { mqtt: { enabled: false, deviceId: 'foh-left' } });

    const [stream] = await browser.waitForServices('stagebox', (f) => f.some((s) => s.name === 'stagebox'), 10000, 'the stream service "stagebox"');
    assert.ok(stream);
    assert.equal(stream.port, svc.port, 'SRV port is the stream server port');
    assert.equal(stream.host, 'stagebox.local', 'SRV target');
    assert.deepEqual(stream.txt, { protocol: '1', channels: '8', rate: '48000', deviceid: 'foh-left', dashboard: '/', version: '0.1.0', transports: 'ws,udp,webrtc' }, JSON.stringify(describeService(stream)));
    assert.ok(stream.addresses?.includes(ns.boxAddr), `A record has the box's address ${ns.boxAddr}: ${JSON.stringify(stream.addresses)}`);

    const [web] = await browser.waitForServices('http', (f) => f.some((s) => s.name === 'stagebox'), 10000, 'the dashboard service "stagebox"');
    assert.ok(web);
    assert.equal(web.port, svc.port);
    assert.deepEqual(web.txt, { path: '/', deviceid: 'foh-left' });

    // What a phone does next: connect to the address and port the answer gave, and stream.
    const d = await discoveryOf(ns, svc);
    assert.equal(d.state, 'announced');
    assert.equal(d.name, 'stagebox');
    assert.deepEqual(d.services, ['stagebox._stagebox._tcp.local', 'stagebox._http._tcp.local']);
    assert.equal(d.renames, 0);
    const client = await StreamClient.open(stream.port, 'phone-1', { host: stream.addresses!.find((a) => a === ns.boxAddr)! });
    await client.subscribe([0, 1], 'pcm16');
    await client.waitForPackets(10, 10000);
    client.close();
  });

  test('the device id without mqtt.deviceId is the one MQTT uses: the host name, sanitised', async () => {
    const { ns, browser } = stage();
    await startBox(ns, 'box-hostname-id');
    const found = await browser.waitForServices('stagebox', (f) => f.length > 0, 10000, 'a stream service');
    assert.equal((found[0]!.txt as Record<string, string>).deviceid, deviceIdFromHostname(os.hostname()));
  });

  test('a second box with the same name is announced as "stagebox-2"; both are found, each with its own port', async () => {
    const { ns, browser } = stage();
    const a = await startBox(ns, 'box-first');
    await a.waitForLog(announced('stagebox'), 10000, 'first box announced');
    const b = await startBox(ns, 'box-second');
    const line = await b.waitForLog(announced('stagebox-2'), 10000, 'second box announced as stagebox-2');
    assert.equal(line.configuredName, 'stagebox');
    assert.ok(b.logs.some((l) => l.msg === 'mDNS: the name "stagebox" is in use on the network; trying the next'), 'the rename is logged');

    const found = await browser.waitForServices('stagebox', (f) => f.length >= 2, 10000, 'both boxes');
    const byName = new Map(found.map((s) => [s.name, s]));
    assert.equal(byName.get('stagebox')?.port, a.port, JSON.stringify(found.map(describeService)));
    assert.equal(byName.get('stagebox-2')?.port, b.port, JSON.stringify(found.map(describeService)));
    assert.equal(byName.get('stagebox-2')?.host, 'stagebox-2.local');

    const da = await discoveryOf(ns, a);
    const db = await discoveryOf(ns, b);
    assert.equal(da.name, 'stagebox');
    assert.deepEqual({ name: db.name, configuredName: db.configuredName, renames: db.renames, host: db.host }, { name: 'stagebox-2', configuredName: 'stagebox', renames: 1, host: 'stagebox-2.local' });
    // The first box kept its name: a later box never makes it move.
    assert.equal(a.logs.filter((l) => (l.msg ?? '').startsWith('mDNS: announced')).length, 1);
  });

  test('two boxes started at the same moment settle on "stagebox" and "stagebox-2" (the one whose records sort lower renames)', async (t) => {
    const { ns, browser } = stage();
    const [a, b] = await Promise.all([startBox(ns, 'box-twin-a'), startBox(ns, 'box-twin-b')]);
    const names = await waitFor(
      async () => {
        const ds = [await discoveryOf(ns, a), await discoveryOf(ns, b)];
        return ds.every((d) => d.state === 'announced') && ds.map((d) => d.name).sort().join() === 'stagebox,stagebox-2' ? ds : false;
      },
      { timeoutMs: 15000, what: 'both boxes announced under different names', intervalMs: 300 },
    );
    const holder = names[0]!.name === 'stagebox' ? a : b;
    const other = holder === a ? b : a;
    const found = await browser.waitForServices(
      'stagebox',
      (f) => f.find((s) => s.name === 'stagebox')?.port === holder.port && f.find((s) => s.name === 'stagebox-2')?.port === other.port,
      10000,
      `"stagebox" on port ${holder.port} and "stagebox-2" on port ${other.port}`,
    );
    assert.equal(found.length, 2);
    // Settled: neither moves again. bonjour-service announces each name a second time a second after the first,
    // and any record of a name given up would have gone out by then too. Once the browser has heard both second
    // announcements, each box has heard the other's (they share the namespace, so they hear each other first);
    // a query each box answers after that shows it has handled them. Then neither may have renamed.
    const renames = [names[0]!.renames, names[1]!.renames];
    const quiet = browser.packets.length;
    const srvFor = (name: string, port: number) =>
      browser.packets.slice(quiet).some((p) => p.type === 'response' && p.answers.some((r) => r.type === 'SRV' && r.name === `${name}._stagebox._tcp.local` && (r.data as { port: number }).port === port));
    await waitFor(() => srvFor('stagebox', holder.port) && srvFor('stagebox-2', other.port), {
      timeoutMs: 10000,
      intervalMs: 25,
      what: 'both boxes announcing their names again',
    });
    await browser.query('stagebox._stagebox._tcp.local', 'SRV', 5000);
    await browser.query('stagebox-2._stagebox._tcp.local', 'SRV', 5000);
    assert.deepEqual([(await discoveryOf(ns, a)).renames, (await discoveryOf(ns, b)).renames], renames);
    // Whether the probes overlapped (then the announcements conflicted) depends on timing; say which path ran.
    const how = [...a.logs, ...b.logs].find((l) => l.msg === 'mDNS: the name "stagebox" is in use on the network; trying the next');
    t.diagnostic(`settled by: ${String(how?.reason)}`);
  });

  test('another device announcing the name later: the box keeps it when its SRV data sorts later (and says so again), renames when it sorts earlier', async () => {
    const { ns, browser } = stage();
    const svc = await startBox(ns, 'box-claimed');
    await svc.waitForLog(announced('stagebox'), 10000, 'announced');
    const srv = (port: number, target: string) => ({ name: 'stagebox._stagebox._tcp.local', type: 'SRV', ttl: 120, data: { port, target, priority: 0, weight: 0 } });

    // "<port> aaa.local" sorts before "<port> stagebox.local": the box wins and re-announces its own records.
    let seen = browser.packets.length;
    await browser.announce([srv(svc.port, 'aaa.local')]);
    await waitFor(
      () => browser.packets.slice(seen).some((p) => p.from === ns.boxAddr && p.answers.some((r) => r.type === 'SRV' && r.name === 'stagebox._stagebox._tcp.local' && r.flush === true && (r.data as { target: string }).target === 'stagebox.local')),
      { timeoutMs: 5000, what: 'the box re-asserting its SRV record' },
    );
    assert.equal((await discoveryOf(ns, svc)).name, 'stagebox');

    // "<port> zzz.local" sorts after: the box gives the name up and probes the next.
    seen = browser.packets.length;
    await browser.announce([srv(svc.port, 'zzz.local')]);
    const line = await svc.waitForLog(announced('stagebox-2'), 10000, 'renamed to stagebox-2');
    assert.equal(line.host, 'stagebox-2.local');
    const rename = svc.logs.find((l) => l.msg === 'mDNS: the name "stagebox" is in use on the network; trying the next');
    assert.match(String(rename?.reason), /^announced by another device: SRV stagebox\._stagebox\._tcp\.local/);
    const d = await discoveryOf(ns, svc);
    assert.deepEqual({ name: d.name, renames: d.renames, state: d.state }, { name: 'stagebox-2', renames: 1, state: 'announced' });
  });

  test('another device on the network holds the dashboard\'s name only: both services and the host move to "stagebox-2" together', async () => {
    const { ns, browser } = stage();
    // A real advertiser on the stage network (bonjour-service, which probes and announces): a web server named "stagebox".
    await browser.publish({ name: 'stagebox', type: 'http', port: 8080, host: 'printer.local' });
    const svc = await startBox(ns, 'box-dashboard-taken');
    const line = await svc.waitForLog(announced('stagebox-2'), 10000, 'announced as stagebox-2');
    assert.equal(line.host, 'stagebox-2.local');
    assert.deepEqual(line.services, ['stagebox-2._stagebox._tcp.local', 'stagebox-2._http._tcp.local']);
    const rename = svc.logs.find((l) => l.msg === 'mDNS: the name "stagebox" is in use on the network; trying the next');
    assert.match(String(rename?.reason), /^answer to the probe: (SRV|TXT) stagebox\._http\._tcp\.local$/);

    const web = await browser.waitForServices('http', (f) => f.some((s) => s.name === 'stagebox-2') && f.some((s) => s.name === 'stagebox'), 10000, 'the other device\'s "stagebox" and the box\'s "stagebox-2"');
    assert.deepEqual(
      web.filter((s) => s.name.startsWith('stagebox')).map((s) => [s.name, s.port, s.host]).sort(),
      [
        ['stagebox', 8080, 'printer.local'],
        ['stagebox-2', svc.port, 'stagebox-2.local'],
      ],
    );
    const [stream] = await browser.waitForServices('stagebox', (f) => f.length > 0, 10000, 'the stream service');
    assert.deepEqual([stream!.name, stream!.host, stream!.port], ['stagebox-2', 'stagebox-2.local', svc.port]);
    const d = await discoveryOf(ns, svc);
    assert.deepEqual({ name: d.name, host: d.host, renames: d.renames, state: d.state }, { name: 'stagebox-2', host: 'stagebox-2.local', renames: 1, state: 'announced' });
  });

  test('every name from "stagebox" to "stagebox-16" taken: an error naming the range, in status, retried with doubling backoff; streaming goes on', async () => {
    const { ns, browser } = stage();
    browser.squat(/^stagebox(-\d+)?\./);
    const svc = await startBox(ns, 'box-crowded');
    const failed = (retryInMs: number) => (l: { msg?: string; retryInMs?: unknown }) => l.msg === 'mDNS announcement failed (streaming is not affected); retrying' && l.retryInMs === retryInMs;
    const line = await svc.waitForLog(failed(5000), 20000, 'the failure after the last name');
    assert.equal(line.err, 'no free name: "stagebox" to "stagebox-16" are all in use on the network');
    const tried = svc.logs.filter((l) => (l.msg ?? '').endsWith('is in use on the network; trying the next')).map((l) => l.taken);
    assert.deepEqual(tried, ['stagebox', ...Array.from({ length: 15 }, (_, i) => `stagebox-${i + 2}`)]);
    const d = await discoveryOf(ns, svc);
    assert.deepEqual({ state: d.state, lastError: d.lastError, renames: d.renames, announcements: d.announcements }, { state: 'error', lastError: line.err, renames: 16, announcements: 0 });
    assert.equal(typeof d.retryInMs, 'number');
    assert.ok(!browser.packets.some((p) => p.from === ns.boxAddr && p.type === 'response'), 'the box announced nothing');

    const client = await StreamClient.open(svc.port, 'phone-crowded', { host: ns.boxAddr });
    await client.subscribe([0], 'pcm16');
    await client.waitForPackets(20, 10000);
    client.close();

    // The retry starts again from "stagebox" and fails the same way: the next wait is twice as long.
    const second = await svc.waitForLog(failed(10000), 20000, 'the second failure');
    assert.equal(second.err, line.err);
  });

  test('an address added to the box\'s interface (a DHCP change, a second network): announced again with cache-flush under the same name', async () => {
    const { ns, browser } = stage();
    const svc = await startBox(ns, 'box-readdressed');
    await svc.waitForLog(announced('stagebox'), 10000, 'announced');
    const seen = browser.packets.length;
    const added = ns.addBoxAddress(7);
    const pushed = await waitFor(
      () =>
        browser.packets
          .slice(seen)
          .flatMap((p) => (p.type === 'response' && p.answers.some((r) => r.type === 'SRV') ? p.answers : []))
          .find((r) => r.type === 'A' && r.name === 'stagebox.local' && r.flush === true && r.data === added),
      { timeoutMs: 15000, what: `an unsolicited A record for stagebox.local with ${added}` },
    );
    assert.equal(pushed.ttl, 120);
    const answers = await browser.query('stagebox.local', 'A', 5000, (a) => a.some((r) => r.data === added));
    assert.deepEqual(answers.map((r) => r.data).sort(), [ns.boxAddr, added].sort());
    const d = await discoveryOf(ns, svc);
    assert.deepEqual({ name: d.name, state: d.state, renames: d.renames }, { name: 'stagebox', state: 'announced', renames: 0 });
    assert.equal(d.announcements, 2);
  });

  test('the TXT record follows a capture change (SIGHUP finds a USB interface: the test signal\'s channels and rate go away until it delivers)', async () => {
    const { ns, browser } = stage();
    const root = path.dirname(writeTempFile('.keep', ''));
    const svc = await startBox(ns, 'box-reprobe', { capture: { device: 'auto', retryInitialMs: 100, retryMaxMs: 200 } }, { STAGEBOX_PROC_ASOUND: root });
    await svc.waitForLog(announced('stagebox'), 10000, 'announced');
    const fqdn = 'stagebox._stagebox._tcp.local';
    const before = txtObject((await browser.query(fqdn, 'TXT', 5000))[0]!.data);
    assert.equal(before.channels, '32', JSON.stringify(before));
    assert.equal(before.rate, '48000');

    // A fake USB card in the probed /proc/asound; its PCM does not open, so the new source has no format yet.
    plugFakeUsbCard(root);
    const seen = browser.packets.length;
    svc.proc.kill('SIGHUP');
    await svc.waitForLog((l) => l.msg === 'mDNS: capture format changed; TXT record updated', 10000, 'TXT update log line');

    // Unsolicited: the box re-announces the new TXT with the cache-flush bit, so phones replace the old one.
    const pushed = await waitFor(
      () =>
        browser.packets
          .slice(seen)
          .flatMap((p) => (p.type === 'response' && p.from === ns.boxAddr ? p.answers : []))
          .find((r) => r.type === 'TXT' && r.name === fqdn && r.flush === true && txtObject(r.data).channels === undefined),
      { timeoutMs: 10000, what: 'an unsolicited TXT announcement without channels' },
    );
    assert.deepEqual(Object.keys(txtObject(pushed.data)).sort(), ['dashboard', 'deviceid', 'protocol', 'transports', 'version']);
    // And asked, it answers with the new record only.
    const answers = await browser.query(fqdn, 'TXT', 5000);
    assert.equal(answers.length, 1, JSON.stringify(answers.map((r) => txtObject(r.data))));
    assert.equal(txtObject(answers[0]!.data).channels, undefined);
    const d = await discoveryOf(ns, svc);
    assert.equal(d.state, 'announced');
    assert.equal(d.name, 'stagebox', 'an update keeps the name');
    assert.ok(d.announcements >= 2, `announcements: ${d.announcements}`);
  });

  test('discovery.enabled false: nothing is sent to the mDNS group, and the status says so', async () => {
    const { ns, browser } = stage();
    const svc = await startBox(ns, 'box-quiet', { discovery: { enabled: false } });
    assert.ok(svc.logs.some((l) => l.msg === 'mDNS announcement off (discovery.enabled false)') || (await svc.waitForLog((l) => l.msg === 'mDNS announcement off (discovery.enabled false)', 5000, 'off log line')));
    // Longer than a probe and announcement take when on (under 1 s), with queries of our own to answer.
    await assert.rejects(browser.waitForServices('stagebox', (f) => f.length > 0, 3000, 'any stream service'), /timed out after 3000 ms waiting for mDNS browse _stagebox\._tcp: any stream service/);
    assert.deepEqual(
      browser.packets.filter((p) => p.from === ns.boxAddr),
      [],
      'no packet at all from the box',
    );
    const d = await discoveryOf(ns, svc);
    assert.deepEqual({ enabled: d.enabled, state: d.state, name: d.name }, { enabled: false, state: 'off', name: null });
  });

  test('port 5353 held exclusively by another program: logged with the reason, shown in status, streaming goes on; announced once it is free', async () => {
    const { ns, browser } = stage();
    // A socket without SO_REUSEADDR on 5353 (what an mDNS responder that does not share would do).
    const blocker = spawn('ip', ['netns', 'exec', ns.name, process.execPath, '-e', "require('dgram').createSocket({type:'udp4',reuseAddr:false}).bind(5353,'0.0.0.0',()=>console.log('bound'))"], { stdio: ['ignore', 'pipe', 'pipe'] });
    blockers.push(blocker);
    await new Promise<void>((resolve, reject) => {
      blocker.stdout!.once('data', () => resolve());
      blocker.once('exit', (code) => reject(new Error(`5353 blocker exited with ${code}`)));
    });
    const svc = await startBox(ns, 'box-blocked');
    const line = await svc.waitForLog((l) => l.msg === 'mDNS announcement failed (streaming is not affected); retrying', 10000, 'mDNS failure log line');
    assert.match(String(line.err), /EADDRINUSE/);
    assert.equal(line.retryInMs, 5000);
    const d = await discoveryOf(ns, svc);
    assert.equal(d.state, 'error');
    assert.match(String(d.lastError), /EADDRINUSE/);
    assert.ok(d.errors >= 1);
    assert.equal(typeof d.retryInMs, 'number');

    const client = await StreamClient.open(svc.port, 'phone-blocked', { host: ns.boxAddr });
    await client.subscribe([0], 'pcm16');
    await client.waitForPackets(20, 10000);

    blocker.kill('SIGKILL');
    await svc.waitForLog(announced('stagebox'), 15000, 'announced after the retry');
    const found = await browser.waitForServices('stagebox', (f) => f.length > 0, 10000, 'the stream service after recovery');
    assert.equal(found[0]!.port, svc.port);
    // The client streamed through it all.
    const n = client.packetCount;
    await client.waitForPackets(n + 20, 10000);
    assert.equal(client.closeInfo, null);
    client.close();
  });

  test('no route for multicast (a box before its network is up): logged with the reason, status shows it, the service serves on', async () => {
    const { ns } = stage({ multicastRoute: false });
    const svc = await startBox(ns, 'box-no-route');
    const line = await svc.waitForLog((l) => l.msg === 'mDNS announcement failed (streaming is not affected); retrying', 10000, 'mDNS failure log line');
    assert.match(String(line.err), /^probe for "stagebox": send ENETUNREACH/);
    const d = await discoveryOf(ns, svc);
    assert.equal(d.state, 'error');
    assert.equal(d.lastError, line.err);
    const client = await StreamClient.open(svc.port, 'phone-no-route', { host: ns.boxAddr });
    await client.subscribe([0], 'pcm16');
    await client.waitForPackets(20, 10000);
    client.close();
  });

  test('SIGTERM sends goodbyes (TTL 0) and exits promptly', async () => {
    const { ns, browser } = stage();
    const svc = await startBox(ns, 'box-goodbye');
    await browser.waitForServices('stagebox', (f) => f.length > 0, 10000, 'the stream service');
    const seen = browser.packets.length;
    const r = await svc.stop();
    assert.equal(r.killed, false, 'exited on its own after SIGTERM');
    assert.equal(r.code, 0);
    const bye = await waitFor(
      () => browser.packets.slice(seen).find((p) => p.from === ns.boxAddr && p.answers.some((a) => a.type === 'PTR' && a.name === '_stagebox._tcp.local' && a.ttl === 0)),
      { timeoutMs: 3000, what: 'a goodbye for the stream PTR' },
    );
    assert.ok(bye.answers.some((a) => a.type === 'SRV' && a.name === 'stagebox._http._tcp.local' && a.ttl === 0), 'the dashboard service says goodbye too');
    assert.ok(svc.logs.some((l) => l.msg === 'mDNS: goodbye sent; stopped'));
  });
});
