import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { removeFixtures, startOnFixture } from '../helpers/alsa-service';
import { checkPackets, type AlsaFixture, type FixtureFormat } from '../helpers/alsa-fixture';
import { stopAllServices, type ServiceProcess } from '../helpers/service-process';
import { StreamClient } from '../helpers/stream-client';
import { inflateSync } from 'node:zlib';
import { getStatus } from '../helpers/http-client';
import { configSchema } from '../../src/config/config-schema';

/**
 * The real ALSA path, no hardware: alsa-lib's `file` plugin replays a FIFO
 * fed in real time with self-identifying samples as an 8-channel capture
 * device (see helpers/alsa-fixture.ts). Every
 * subscribed channel must reach the client bit-exact (top 16 bits for pcm16,
 * top 24 bits for pcm24), in the order the client asked for.
 */

const CHANNELS = 8;
const PERIOD = 128;
const MIN_CHECKED = 50;
const COLLECT = 120;

let started = 0;

function startOn(format: FixtureFormat, pool: Record<string, unknown> = {}): Promise<{ svc: ServiceProcess; fx: AlsaFixture }> {
  return startOnFixture({
    format,
    channels: CHANNELS,
    periodFrames: PERIOD,
    pcmName: `sb_${format.toLowerCase()}_${started++}`,
    label: `alsa ${format}`,
    capture: { retryInitialMs: 100, retryMaxMs: 1000 },
    config: { pool },
  });
}

function assertBitExact(client: StreamClient, format: FixtureFormat, codec: 'pcm16' | 'pcm24' | 'deflate', channels: number[]): void {
  const r = checkPackets(client.packets, format, codec, channels, PERIOD);
  assert.deepEqual(r.problems.slice(0, 10), [], `${client.label}: ${format} → ${codec} ${JSON.stringify(channels)}: ${r.problems.length} problem(s)`);
  assert.ok(r.checked >= MIN_CHECKED, `${client.label}: only ${r.checked} packets checked (of ${client.packets.length}); need ${MIN_CHECKED}`);
  // The device is fed in real time and the client reads: nearly every period follows the previous one.
  assert.ok(r.contiguousPairs >= MIN_CHECKED / 2, `${client.label}: only ${r.contiguousPairs} contiguous packet pairs were verified`);
  assert.equal(client.badPackets.length, 0, `unparseable packets: ${client.badPackets.slice(0, 3).join('; ')}`);
}

after(async () => {
  await stopAllServices();
  removeFixtures();
});

describe('S16_LE capture through the ALSA file plugin', () => {
  let svc: ServiceProcess;
  before(async () => {
    ({ svc } = await startOn('S16_LE'));
  });

  test('a client subscribed to channels [5, 0, 3] with pcm16 receives every sample of those channels bit-exact, in that order', async () => {
    const c = await StreamClient.open(svc.port, 's16-pcm16');
    await c.subscribe([5, 0, 3], 'pcm16');
    await c.waitForPackets(COLLECT, 15000);
    c.close();
    assertBitExact(c, 'S16_LE', 'pcm16', [5, 0, 3]);
  });

  test('two clients with different channel subsets at once each receive their own channels bit-exact', async () => {
    const a = await StreamClient.open(svc.port, 's16-a');
    const b = await StreamClient.open(svc.port, 's16-b');
    await a.subscribe([7, 2], 'pcm16');
    await b.subscribe([1, 6, 4, 0], 'pcm16');
    await Promise.all([a.waitForPackets(COLLECT, 15000), b.waitForPackets(COLLECT, 15000)]);
    a.close();
    b.close();
    assertBitExact(a, 'S16_LE', 'pcm16', [7, 2]);
    assertBitExact(b, 'S16_LE', 'pcm16', [1, 6, 4, 0]);
  });

  test('a deflate client receives zlib streams that inflate to exactly the pcm16 payload of the same period', async () => {
    const z = await StreamClient.open(svc.port, 's16-deflate');
    const p = await StreamClient.open(svc.port, 's16-pcm16-ref');
    await z.subscribe([5, 0, 3], 'deflate');
    await p.subscribe([5, 0, 3], 'pcm16');
    await Promise.all([z.waitForPackets(COLLECT, 15000), p.waitForPackets(COLLECT, 15000)]);
    z.close();
    p.close();
    assertBitExact(z, 'S16_LE', 'deflate', [5, 0, 3]);
    const bySeq = new Map(p.packets.map((pk) => [pk.seq, pk]));
    let compared = 0;
    for (const zp of z.packets) {
      const ref = bySeq.get(zp.seq);
      if (!ref) continue;
      // RFC 1950 header: CM 8 (deflate), header checksum, FLEVEL 0 (fastest: level 1).
      const [cmf, flg] = [zp.payload[0]!, zp.payload[1]!];
      assert.equal(cmf & 0x0f, 8, `seq ${zp.seq}: zlib CM is ${cmf & 0x0f}, expected 8`);
      assert.equal((cmf * 256 + flg) % 31, 0, `seq ${zp.seq}: zlib header check bits wrong`);
      assert.equal(flg >> 6, 0, `seq ${zp.seq}: zlib FLEVEL ${flg >> 6}; level 1 writes 0`);
      const inflated = inflateSync(zp.payload);
      assert.ok(Buffer.from(ref.payload).equals(inflated), `seq ${zp.seq}: inflated deflate payload differs from the pcm16 payload`);
      compared++;
    }
    assert.ok(compared >= MIN_CHECKED, `only ${compared} periods reached both clients; need ${MIN_CHECKED}`);
  });
});

describe('S24_3LE capture through the ALSA file plugin', () => {
  let svc: ServiceProcess;
  before(async () => {
    ({ svc } = await startOn('S24_3LE'));
  });

  test('a client subscribed to channels [5, 0, 3] with pcm24 receives every 24-bit sample bit-exact', async () => {
    const c = await StreamClient.open(svc.port, 's24-pcm24');
    await c.subscribe([5, 0, 3], 'pcm24');
    await c.waitForPackets(COLLECT, 15000);
    c.close();
    assertBitExact(c, 'S24_3LE', 'pcm24', [5, 0, 3]);
  });

  test('a pcm16 client and a pcm24 client on different channels at once each receive their channels exactly (pcm16: top 16 bits)', async () => {
    const a = await StreamClient.open(svc.port, 's24-a');
    const b = await StreamClient.open(svc.port, 's24-b');
    await a.subscribe([6, 1], 'pcm16');
    await b.subscribe([2, 7, 4], 'pcm24');
    await Promise.all([a.waitForPackets(COLLECT, 15000), b.waitForPackets(COLLECT, 15000)]);
    a.close();
    b.close();
    assertBitExact(a, 'S24_3LE', 'pcm16', [6, 1]);
    assertBitExact(b, 'S24_3LE', 'pcm24', [2, 7, 4]);
  });
});

describe('S32_LE capture through the ALSA file plugin', () => {
  let svc: ServiceProcess;
  before(async () => {
    ({ svc } = await startOn('S32_LE'));
  });

  test('a client subscribed to channels [5, 0, 3] with pcm24 receives the top 24 bits of every sample', async () => {
    const c = await StreamClient.open(svc.port, 's32-pcm24');
    await c.subscribe([5, 0, 3], 'pcm24');
    await c.waitForPackets(COLLECT, 15000);
    c.close();
    assertBitExact(c, 'S32_LE', 'pcm24', [5, 0, 3]);
  });

  test('a client subscribed to channels [5, 0, 3] with pcm16 receives the top 16 bits of every sample', async () => {
    const c = await StreamClient.open(svc.port, 's32-pcm16');
    await c.subscribe([5, 0, 3], 'pcm16');
    await c.waitForPackets(COLLECT, 15000);
    c.close();
    assertBitExact(c, 'S32_LE', 'pcm16', [5, 0, 3]);
  });
});

/**
 * Pool settings that send every period through the worker threads: one
 * worker, and the inline threshold at 0. The threshold's key is being
 * reworked in src (inlineMaxWork, inlineMaxMs, inlineBudgetPct, ...), all with
 * 0 meaning "always use the workers", so it is read from the schema defaults.
 */
function alwaysPool(): Record<string, unknown> {
  const pool = configSchema.parse({}).pool as Record<string, unknown>;
  const keys = Object.keys(pool).filter((k) => k.startsWith('inline'));
  assert.equal(keys.length, 1, `expected one inline threshold key in the pool config: ${JSON.stringify(pool)}`);
  return { size: 1, [keys[0]!]: 0 };
}

describe('S32_LE capture encoded by the send pool workers (pool.size 1, inline threshold 0)', () => {
  let svc: ServiceProcess;
  before(async () => {
    ({ svc } = await startOn('S32_LE', alwaysPool()));
  });

  test('pcm24, pcm16 and deflate clients with different channel orders all receive their channels exactly', async () => {
    const a = await StreamClient.open(svc.port, 'pool-pcm24');
    const b = await StreamClient.open(svc.port, 'pool-pcm16');
    const z = await StreamClient.open(svc.port, 'pool-deflate');
    await a.subscribe([5, 0, 3], 'pcm24');
    await b.subscribe([7, 6, 5, 4, 3, 2, 1, 0], 'pcm16');
    await z.subscribe([2], 'deflate');
    await Promise.all([a, b, z].map((c) => c.waitForPackets(COLLECT, 15000)));
    [a, b, z].forEach((c) => c.close());
    assertBitExact(a, 'S32_LE', 'pcm24', [5, 0, 3]);
    assertBitExact(b, 'S32_LE', 'pcm16', [7, 6, 5, 4, 3, 2, 1, 0]);
    assertBitExact(z, 'S32_LE', 'deflate', [2]);
    const st = await getStatus(svc.port);
    assert.ok(st.pool.pooledPeriods! > 0, `the periods were meant to go through the pool: ${JSON.stringify(st.pool)}`);
  });
});

describe('a 64-channel S16_LE device with 32-frame periods', () => {
  test('channels [63, 0, 31] arrive bit-exact in pcm16', async () => {
    const { svc } = await startOnFixture({ format: 'S16_LE', channels: 64, periodFrames: 32, pcmName: 'sb_wide', label: 'alsa 64ch' });
    const c = await StreamClient.open(svc.port, 'wide');
    await c.subscribe([63, 0, 31], 'pcm16');
    await c.waitForPackets(4 * COLLECT, 15000);
    c.close();
    const r = checkPackets(c.packets, 'S16_LE', 'pcm16', [63, 0, 31], 32);
    assert.deepEqual(r.problems.slice(0, 10), [], `${r.problems.length} problem(s)`);
    assert.ok(r.checked >= 4 * MIN_CHECKED, `only ${r.checked} packets checked`);
    assert.deepEqual(c.badPackets, []);
  });
});
