import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startService, stopAllServices, type ServiceProcess } from '../helpers/service-process';
import { describeSeqGaps, firstSeqGap, StreamClient } from '../helpers/stream-client';
import { getStatus, httpRequest } from '../helpers/http-client';
import { waitFor } from '../helpers/wait';
import { decodeState } from '../../src/state/state-store';

/**
 * A state dir that turns read-only or fills up while the box streams. Real
 * failures, no fakes: the service runs in a mount namespace of its own
 * (unshare -m) with a 1 MB tmpfs mounted on its state dir, and the test
 * remounts that read-only or fills it through nsenter. The mounts exist only
 * in the service's namespace and vanish with it; the host sees none.
 */

const dirs: string[] = [];
after(async () => {
  await stopAllServices();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const isRoot = process.getuid?.() === 0;
const NEEDS_ROOT = isRoot ? false : 'needs root: mounts a tmpfs in a private mount namespace (CI and the dev VM run as root)';

interface StateView {
  dir: string;
  saving: boolean;
  error: string | null;
  writes: number;
  failure: { path: string; code: string; message: string; since: string; attempts: number } | null;
}

interface HealthzBody {
  status: string;
  reasons: string[];
  warnings: string[];
}

async function stateOf(port: number): Promise<{ state: StateView; health: { state: { saving: boolean; error: string | null } } }> {
  return (await getStatus(port)) as unknown as { state: StateView; health: { state: { saving: boolean; error: string | null } } };
}

async function healthz(port: number): Promise<{ code: number; body: HealthzBody }> {
  const r = await httpRequest(port, 'GET', '/healthz');
  return { code: r.status, body: JSON.parse(r.body) as HealthzBody };
}

/** Runs `args` inside the service's mount namespace. */
function inServiceNs(svc: ServiceProcess, args: string[]): string {
  return execFileSync('nsenter', ['-t', String(svc.proc.pid), '-m', ...args], { encoding: 'utf8', timeout: 10_000 });
}

async function startOnTmpfs(label: string): Promise<{ svc: ServiceProcess; dir: string }> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'stagebox-statefs-'));
  dirs.push(dir);
  const svc = await startService({
    label,
    // sh mounts, then execs node: the child's pid is the service's, its namespace the test's handle.
    wrap: ['unshare', '-m', '--propagation', 'private', 'sh', '-c', 'mount -t tmpfs -o size=1m,mode=0750 stagebox-state "$0" && exec "$@"', dir],
    config: { capture: { device: 'test-signal', channels: 2 }, state: { dir } },
  });
  assert.match(inServiceNs(svc, ['findmnt', '-n', '-o', 'FSTYPE', dir]), /tmpfs/, 'the state dir is the tmpfs in the service namespace');
  return { svc, dir };
}

/**
 * The whole fault story for one way of breaking the dir: a listener streams,
 * a second client keeps changing its subscription (each change is a state
 * write), the dir breaks, the box reports it and streams on, the dir is
 * repaired, the next write lands and the report clears.
 */
async function breakAndRepair(label: string, code: string, breakIt: (svc: ServiceProcess, dir: string) => void, repair: (svc: ServiceProcess, dir: string) => void): Promise<void> {
  const { svc, dir } = await startOnTmpfs(label);
  const listener = await StreamClient.open(svc.port, `${label}-listener`, { label: 'listener' });
  await listener.subscribe([0, 1], 'pcm16');
  await listener.waitForPackets(50, 10_000);
  const writer = await StreamClient.open(svc.port, `${label}-writer`, { label: 'writer', keepPackets: false });
  await writer.subscribe([0], 'pcm16');
  let st = await waitFor(async () => ((await stateOf(svc.port)).state.writes >= 1 ? stateOf(svc.port) : undefined), { timeoutMs: 10_000, what: 'a first state write' });
  assert.equal(st.state.saving, true);
  assert.equal(st.state.failure, null);
  assert.equal((await healthz(svc.port)).body.status, 'ok');

  let flip = 0;
  const churn = setInterval(() => writer.send({ type: 'subscribe', channels: [flip++ % 2], codec: 'pcm16' }), 200);
  try {
    const mark = listener.packets.length;
    breakIt(svc, dir);
    st = await waitFor(
      async () => {
        const s = await stateOf(svc.port);
        return s.state.failure !== null && s.state.failure.attempts >= 2 ? s : undefined;
      },
      { timeoutMs: 20_000, what: `two failed state writes (${code})`, describe: () => svc.describe() },
    );
    // /api/status: the path and the errno.
    assert.equal(st.state.saving, false);
    assert.equal(st.state.failure!.code, code);
    assert.ok(st.state.failure!.path.startsWith(dir), `failure path ${st.state.failure!.path} is in ${dir}`);
    assert.ok(st.state.error!.includes(code) && st.state.error!.includes(dir), `state.error names errno and path: ${st.state.error}`);
    // The health snapshot (the MQTT health topic's payload) says the same.
    assert.equal(st.health.state.saving, false);
    assert.ok(st.health.state.error!.includes(code), JSON.stringify(st.health.state));
    // /healthz: degraded, still 200 (the musicians hear everything), with the reason.
    const hz = await healthz(svc.port);
    assert.equal(hz.code, 200, JSON.stringify(hz.body));
    assert.equal(hz.body.status, 'degraded');
    assert.deepEqual(hz.body.reasons, []);
    assert.equal(hz.body.warnings.length, 1, JSON.stringify(hz.body));
    assert.ok(hz.body.warnings[0]!.includes(dir) && hz.body.warnings[0]!.includes(code), hz.body.warnings[0]);
    // Logged once for the episode, not per attempt.
    const failedLines = svc.logs.filter((l) => typeof l.msg === 'string' && l.msg.startsWith('state write failed'));
    assert.equal(failedLines.length, 1, `one "state write failed" line for ${st.state.failure!.attempts} attempts: ${JSON.stringify(failedLines)}`);
    assert.equal(failedLines[0]!.level, 50);
    assert.equal(failedLines[0]!.err, code);

    const writesBefore = st.state.writes;
    repair(svc, dir);
    // Retries back off (1 s, 2 s, 4 s ...): the next one after the repair lands.
    st = await waitFor(
      async () => {
        const s = await stateOf(svc.port);
        return s.state.saving && s.state.writes > writesBefore ? s : undefined;
      },
      { timeoutMs: 40_000, what: 'a state write to succeed after the repair', describe: () => svc.describe() },
    );
    assert.equal(st.state.failure, null);
    assert.equal(st.state.error, null);
    assert.equal(st.health.state.saving, true);
    const hzAfter = await healthz(svc.port);
    assert.deepEqual([hzAfter.code, hzAfter.body.status, hzAfter.body.warnings], [200, 'ok', []]);
    await svc.waitForLog((l) => typeof l.msg === 'string' && l.msg.startsWith('state writes work again'), 5000, '"state writes work again"');
    // The file on the tmpfs is complete and has the writer.
    const decoded = decodeState(Buffer.from(inServiceNs(svc, ['cat', path.join(dir, 'state.json')])));
    assert.ok(decoded.ok && decoded.doc.clients[`${label}-writer`], `state.json after the repair: ${JSON.stringify(decoded).slice(0, 300)}`);

    // Streaming went on, without a gap, through the whole episode.
    const during = listener.packetsFrom(mark);
    assert.ok(during.length >= 500, `listener got ${during.length} packets during the episode`);
    assert.equal(firstSeqGap(during), -1, `seq gaps while the state dir was broken: ${describeSeqGaps(during)}`);
    assert.equal(listener.closeInfo, null, 'the listener stayed connected');
    assert.equal(svc.exit, null, svc.describe());
  } finally {
    clearInterval(churn);
  }
  listener.close();
  writer.close();
  const stop = await svc.stop();
  assert.equal(stop.code, 0, svc.describe());
}

describe('a state dir that fails while the box streams', { skip: NEEDS_ROOT }, () => {
  test('read-only (EROFS): the box streams on, reports the path and errno in status, /healthz (degraded, 200) and the health snapshot, logs it once, and saves again once writable', async () => {
    await breakAndRepair(
      'state-ro',
      'EROFS',
      (svc, dir) => inServiceNs(svc, ['mount', '-o', 'remount,ro', dir]),
      (svc, dir) => inServiceNs(svc, ['mount', '-o', 'remount,rw', dir]),
    );
  });

  test('full (ENOSPC): the box streams on, reports it the same way, and saves again once space is freed', async () => {
    await breakAndRepair(
      'state-full',
      'ENOSPC',
      // dd stops at ENOSPC with a non-zero exit: that is the point.
      (svc, dir) => inServiceNs(svc, ['sh', '-c', 'dd if=/dev/zero of="$0/fill" bs=64k 2>/dev/null; true', dir]),
      (svc, dir) => inServiceNs(svc, ['rm', '-f', path.join(dir, 'fill')]),
    );
  });
});
