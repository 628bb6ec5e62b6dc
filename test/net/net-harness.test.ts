/**
 * The impaired-network harness with real namespaces, veths, iptables NFQUEUE
 * rules and nh-impair: traffic from the box's namespace to the listeners' and
 * back, a few seconds of it per test. Needs root (namespaces); without it every
 * test is skipped with the harness's own one-sentence reason.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import type { ImpairReport } from '../../bench/net/impair-report';
import { BOX_ADDR, harnessUnavailable, NetHarness, type NsName } from '../../bench/net/net-harness';
import { loadProfile, parseProfile, type NetProfile } from '../../bench/net/net-profile';
import { waitFor, withTimeout } from '../helpers/wait';

const unavailable = harnessUnavailable();
const PROBE = path.join(__dirname, '..', 'fixtures', 'net-probe.js');
const CLI = path.join(__dirname, '..', '..', 'bench', 'net', 'harness-cli.js');
const RUN_BENCH = path.join(__dirname, '..', '..', 'bench', 'run-bench.js');
const WAIT_MS = 15_000;

interface Probe {
  ready(): Promise<void>;
  result(): Promise<Record<string, unknown>>;
}

/** Runs test/fixtures/net-probe.js in one of the harness's namespaces. */
function probe(h: NetHarness, ns: NsName, args: string[]): Probe {
  const [cmd, ...pre] = h.prefix(ns);
  const child = spawn(cmd!, [...pre, process.execPath, PROBE, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const lines: Record<string, unknown>[] = [];
  const waiters: (() => void)[] = [];
  let partial = '';
  child.stdout!.on('data', (c: Buffer) => {
    const parts = (partial + c.toString()).split('\n');
    partial = parts.pop()!;
    for (const p of parts) lines.push(JSON.parse(p) as Record<string, unknown>);
    for (const w of waiters.splice(0)) w();
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  const nextLine = (pred: (l: Record<string, unknown>) => boolean, what: string): Promise<Record<string, unknown>> =>
    withTimeout(
      new Promise((resolve, reject) => {
        const check = (): void => {
          const l = lines.find(pred);
          if (l) resolve(l);
          else waiters.push(check);
        };
        check();
        void exited.then((code) => {
          const l = lines.find(pred);
          if (l) resolve(l);
          else reject(new Error(`net-probe ${args[0]} exited (code ${code}) before ${what}: ${stderr}`));
        });
      }),
      WAIT_MS,
      `net-probe ${args.join(' ')}: ${what}`,
    );
  return { ready: () => nextLine((l) => l.ready === true, 'ready').then(() => undefined), result: () => nextLine((l) => l.ready === undefined, 'its result') };
}

type Received = [number, number, number][];

/** `count` datagrams from the box to listener 0, `perMs` each millisecond; what arrived, and the harness's report. */
async function udpFlow(profile: NetProfile, seed: number, count: number, perMs: number): Promise<{ received: Received; report: ImpairReport }> {
  const h = await NetHarness.start({ profile, listeners: 1, seed, maxSeconds: 60 });
  try {
    const rx = probe(h, 'listener', ['udp-recv', h.listenerAddrs[0]!, '9000', String(count), '1000']);
    await rx.ready();
    const tx = probe(h, 'box', ['udp-send', h.listenerAddrs[0]!, '9000', String(count), String(perMs)]);
    assert.deepEqual(await tx.result(), { sent: count });
    const { received } = (await rx.result()) as { received: Received };
    const report = await h.stop();
    assert.ok(report, 'a final report');
    return { received, report };
  } finally {
    await h.stop();
  }
}

describe('impaired-network harness', { skip: unavailable ?? false }, () => {
  test('lan passes every packet of a UDP flow and of a TCP flow each way, in order', async () => {
    const h = await NetHarness.start({ profile: loadProfile('lan'), listeners: 2, seed: 1, maxSeconds: 60 });
    try {
      const addr = h.listenerAddrs[1]!;
      const rx = probe(h, 'listener', ['udp-recv', addr, '9000', '1000', '1000']);
      await rx.ready();
      const tx = probe(h, 'box', ['udp-send', addr, '9000', '1000', '4']);
      assert.deepEqual(await tx.result(), { sent: 1000 });
      const { received } = (await rx.result()) as { received: Received };
      assert.deepEqual(
        received.map((r) => r[0]),
        Array.from({ length: 1000 }, (_, i) => i),
      );

      const down = probe(h, 'listener', ['tcp-recv', addr, '9001']);
      await down.ready();
      const downSent = probe(h, 'box', ['tcp-send', addr, '9001', String(1 << 20)]);
      assert.deepEqual(await down.result(), await downSent.result());
      const up = probe(h, 'box', ['tcp-recv', BOX_ADDR, '9002']);
      await up.ready();
      const upSent = probe(h, 'listener', ['tcp-send', BOX_ADDR, '9002', String(1 << 20), addr]);
      assert.deepEqual(await up.result(), await upSent.result());

      // The box's namespace has the appliance's TCP settings (rootfs-overlay/etc/sysctl.d/90-stagebox.conf).
      const [cmd, ...pre] = h.prefix('box');
      const sysctl = (key: string): string => spawnSync(cmd!, [...pre, 'cat', `/proc/sys/net/ipv4/${key}`], { encoding: 'utf8' }).stdout.trim().replace(/\s+/g, ' ');
      assert.equal(sysctl('tcp_notsent_lowat'), '16384');
      assert.equal(sysctl('tcp_wmem'), '4096 16384 262144');

      const report = (await h.stop())!;
      assert.equal(report.kernelDropped, 0);
      const link = report.links[1]!;
      for (const d of [link.down, link.up]) {
        assert.equal(d.dropped, 0);
        assert.equal(d.overflow, 0);
        assert.equal(d.passed, d.packets);
        assert.deepEqual(d.stalls, []);
      }
      // 1000 datagrams and a megabyte down (and its ACKs up); a megabyte up (and its ACKs down).
      assert.ok(link.down.packets > 1000 + 700, `${link.down.packets} packets down`);
      assert.ok(link.up.packets > 700, `${link.up.packets} packets up`);
      // Listener 0 sent nothing: its link saw nothing.
      assert.equal(report.links[0]!.down.packets + report.links[0]!.up.packets, 0);
    } finally {
      await h.stop();
    }
  });

  test('a loss profile drops about its rate, in bursts no longer than allowed, and the same seed drops the same packets', async () => {
    const lossy = parseProfile({ description: 'test: 5 % loss in bursts of 1-4', down: { loss: { rate: 0.05, meanBurst: 2, maxBurst: 4 } } }, 'test');
    const count = 2000;
    const run = async (seed: number): Promise<number[]> => {
      const { received, report } = await udpFlow(lossy, seed, count, 4);
      const d = report.links[0]!.down;
      assert.equal(d.packets, count, 'every datagram reached the queue');
      assert.equal(received.length, count - d.dropped, 'what the model dropped is all that is missing');
      const rate = d.dropped / count;
      assert.ok(rate >= 0.03 && rate <= 0.07, `seed ${seed}: ${d.dropped} of ${count} dropped`);
      assert.ok(d.longestDropBurst <= 4, `a burst of ${d.longestDropBurst}`);
      const got = new Set(received.map((r) => r[0]));
      const dropped = Array.from({ length: count }, (_, i) => i).filter((i) => !got.has(i));
      let run = 0;
      for (let i = 0; i < count; i++) {
        run = got.has(i) ? 0 : run + 1;
        assert.ok(run <= 4, `${run} datagrams in a row missing at ${i}`);
      }
      return dropped;
    };
    const first = await run(7);
    assert.deepEqual(await run(7), first);
    assert.notDeepEqual(await run(8), first);
  });

  test('a stall holds everything sent into it and releases it, in order, when it ends', async () => {
    const stally = parseProfile({ description: 'test: a 150 ms stall every 300 ms', stalls: { intervalMs: { min: 300, max: 300 }, durationMs: { min: 150, max: 150 } } }, 'test');
    const { received, report } = await udpFlow(stally, 1, 1200, 1);
    assert.equal(received.length, 1200);
    assert.deepEqual(
      received.map((r) => r[0]),
      Array.from({ length: 1200 }, (_, i) => i),
      'released in order',
    );
    const stalls = report.links[0]!.down.stalls.filter((s) => s.held > 0);
    assert.ok(stalls.length >= 2, `${stalls.length} stalls met the traffic`);
    for (const s of report.links[0]!.down.stalls) assert.ok(Math.abs(s.durationMs - 150) < 1e-6, `a stall of ${s.durationMs} ms`);
    for (const s of stalls) {
      const end = s.atMs + s.durationMs;
      // Sent after the stall began: it reached the queue inside it, so it cannot arrive before the end.
      for (const [seq, sent, arrived] of received) if (sent >= s.atMs && sent < end) assert.ok(arrived >= end, `#${seq} sent ${sent - s.atMs} ms into the stall arrived ${end - arrived} ms before its end`);
      // What arrived after the end though sent before it is what was held (give or take one in flight at the edge).
      const late = received.filter(([, sent, arrived]) => sent < end && arrived >= end).length;
      assert.ok(late >= s.held && late <= s.held + 2, `the report says ${s.held} held, ${late} arrived after the end`);
    }
    // Every window is listed, those with no traffic in them too: one each 300 ms from nh-impair's start to the report.
    const starts = report.links[0]!.down.stalls.map((s) => s.atMs);
    for (let i = 1; i < starts.length; i++) assert.ok(Math.abs(starts[i]! - starts[i - 1]! - 300) < 1e-6, `windows ${starts[i]! - starts[i - 1]!} ms apart`);
    assert.ok(starts[0]! - report.fromMs <= 300 && report.toMs - starts[starts.length - 1]! <= 300, `windows from ${starts[0]! - report.fromMs} ms to ${report.toMs - starts[starts.length - 1]!} ms before the end`);
    // The link stalls both ways: the report lists the same windows for the uplink.
    assert.deepEqual(
      report.links[0]!.up.stalls.map((s) => s.atMs),
      report.links[0]!.down.stalls.map((s) => s.atMs),
    );
  });

  test('killed with SIGKILL, it leaves no process, namespace, link or rule behind', async () => {
    const cli = spawn(process.execPath, [CLI, '--profile', 'busy-venue', '--listeners', '2', '--seconds', '60'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const ready = await withTimeout(
      new Promise<{ pids: number[]; namespaces: Record<string, string> }>((resolve, reject) => {
        cli.stdout!.once('data', (c: Buffer) => resolve(JSON.parse(c.toString().split('\n')[0]!) as { pids: number[]; namespaces: Record<string, string> }));
        cli.once('exit', (code) => reject(new Error(`harness-cli exited (code ${code})`)));
      }),
      WAIT_MS,
      'harness-cli ready',
    );
    const ours = new Set(Object.values(ready.namespaces));
    assert.equal(ours.size, 3);
    assert.ok(netnsInUse(ours), 'the namespaces are there while it runs');
    cli.kill('SIGKILL');
    await waitFor(() => ready.pids.every((pid) => !alive(pid)), { timeoutMs: WAIT_MS, what: 'the harness processes to die with it' });
    await waitFor(() => !netnsInUse(ours), { timeoutMs: WAIT_MS, what: 'no process left in its namespaces' });
    const links = spawnSync('ip', ['-o', 'link'], { encoding: 'utf8' }).stdout;
    assert.doesNotMatch(links, /^\d+: nh/m);
    assert.doesNotMatch(spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout, /^nh/m);
    assert.doesNotMatch(spawnSync('iptables-save', [], { encoding: 'utf8' }).stdout, /nh-impair|NFQUEUE/);
  });

  test('without the rights to make namespaces it says so, and the wifi bench skips with that sentence', () => {
    const nobody = ['--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all', '--bounding-set=-all', '--'];
    const sentence = 'the impaired-network harness needs CAP_SYS_ADMIN and CAP_NET_ADMIN to make network namespaces and links (run it as root); this process does not have them';
    const cli = spawnSync('setpriv', [...nobody, process.execPath, CLI, '--profile', 'lan', '--seconds', '1'], { encoding: 'utf8' });
    assert.deepEqual({ status: cli.status, stderr: cli.stderr }, { status: 3, stderr: `harness-cli: ${sentence}\n` });
    const bench = spawnSync('setpriv', [...nobody, process.execPath, RUN_BENCH, '--scenarios', 'wifi', '--seconds', '1'], { encoding: 'utf8' });
    assert.equal(bench.status, 0, bench.stderr);
    // Without CAP_SYS_NICE the service cannot run at SCHED_FIFO either, and the line says so.
    assert.deepEqual(JSON.parse(bench.stdout), { serviceRealtime: false, scenario: 'wifi', skipped: sentence });
  });
});

function alive(pid: number): boolean {
  try {
    // A zombie has died; it only waits for its new parent to reap it.
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** Whether any process is still in one of `ns` (a namespace with no process and no mount is gone). */
function netnsInUse(ns: Set<string>): boolean {
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      if (ns.has(readlinkSync(`/proc/${pid}/ns/net`))) return true;
    } catch {
      // gone meanwhile
    }
  }
  return false;
}
