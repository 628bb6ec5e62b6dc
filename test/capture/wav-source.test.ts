import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startService, stopAllServices, writeTempFile } from '../helpers/service-process';
import { StreamClient } from '../helpers/stream-client';
import { getStatus, type Status } from '../helpers/http-client';
import { checkPackets, patternBytes, PATTERN_FRAMES } from '../helpers/alsa-fixture';
import { sleep, waitFor } from '../helpers/wait';
import { FLAG_DISCONTINUITY } from '../../src/protocol';
import { buildWav } from '../../src/capture/wav-file';

/**
 * capture.wavFile / STAGEBOX_WAV_FILE: a WAV file streamed in real time and
 * looped. The file holds exactly one cycle of the self-identifying pattern
 * (65536 frames), so the loop is seamless and every packet, including those
 * across the loop point, can be checked bit-exact and for continuity.
 */

after(() => stopAllServices());

describe('WAV file source', () => {
  test('an S24 WAV file given by STAGEBOX_WAV_FILE streams bit-exact in pcm24 and loops seamlessly', async () => {
    const channels = 6;
    const wav = writeTempFile('pattern.wav', buildWav('S24_3LE', channels, 48000, patternBytes('S24_3LE', channels, PATTERN_FRAMES)));
    const svc = await startService({
      label: 'wav',
      env: { STAGEBOX_WAV_FILE: wav },
      config: { capture: { device: 'test-signal', periodFrames: 128 } },
    });
    const c = await StreamClient.open(svc.port, 'wav-client');
    // The file loads asynchronously: the welcome may predate it, then a "source" message follows.
    const welcome = c.messages.find((m) => m.type === 'welcome')!;
    const src = ((welcome.source as Record<string, unknown>).state === 'running'
      ? welcome.source
      : await c.waitForMessage('source', { pred: (m) => m.state === 'running' })) as Record<string, unknown>;
    assert.equal(src.kind, 'wav', `the WAV file overrides capture.device: ${JSON.stringify(src)}`);
    assert.equal(src.channels, channels);
    assert.equal(src.format, 'S24_3LE');
    await c.subscribe([4, 1], 'pcm24');
    // More than one pass through the file (512 periods), so the loop point is crossed.
    await c.waitForPackets(PATTERN_FRAMES / 128 + 100, 15000);
    c.close();
    const r = checkPackets(c.packets, 'S24_3LE', 'pcm24', [4, 1], 128);
    assert.deepEqual(r.problems.slice(0, 5), [], `${r.problems.length} problem(s)`);
    assert.ok(r.checked >= 600);
    const last = c.packets[c.packets.length - 1]!;
    assert.ok(last.samplePos > BigInt(PATTERN_FRAMES), `samplePos ${last.samplePos}: the file was not played past its end`);
  });

  test('held up (the service stopped for 150 ms, three times), it plays on later: samplePos stays contiguous, every sample bit-exact, no packet flagged', async () => {
    const channels = 2;
    const wav = writeTempFile('held.wav', buildWav('S16_LE', channels, 48000, patternBytes('S16_LE', channels, PATTERN_FRAMES)));
    const svc = await startService({ label: 'wav-held', config: { capture: { wavFile: wav, periodFrames: 128 } } });
    const c = await StreamClient.open(svc.port, 'wav-held-client');
    const welcome = c.messages.find((m) => m.type === 'welcome')!;
    if ((welcome.source as Record<string, unknown>).state !== 'running') await c.waitForMessage('source', { pred: (m) => m.state === 'running' });
    await c.subscribe([1, 0], 'pcm16');
    await c.waitForPackets(100, 10000);
    const pid = svc.proc.pid!;
    try {
      for (let i = 0; i < 3; i++) {
        // The load itself: SIGSTOP holds the service's event loop (and its pacer) as a busy machine can.
        process.kill(pid, 'SIGSTOP');
        await sleep(150);
        process.kill(pid, 'SIGCONT');
        await c.waitForPackets(c.packetCount + 100, 10000);
      }
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    const jitter = ((await getStatus(svc.port)).capture as unknown as { jitter: { maxMs: number } }).jitter;
    assert.ok(jitter.maxMs > (5 * 128 * 1000) / 48000, `the hold made a period more than 4 periods late (capture jitter max ${jitter.maxMs} ms)`);
    c.close();
    const r = checkPackets(c.packets, 'S16_LE', 'pcm16', [1, 0], 128);
    assert.deepEqual(r.problems.slice(0, 5), [], `${r.problems.length} problem(s)`);
    c.packets.forEach((p, i) => {
      const gap = i > 0 && p.seq !== ((c.packets[i - 1]!.seq + 1) >>> 0);
      // Only the service's first packet (samplePos 0) starts with a discontinuity; a gap would be this client's queue dropping.
      if (!gap && p.samplePos !== 0n) assert.equal(p.flags & FLAG_DISCONTINUITY, 0, `packet seq ${p.seq} (samplePos ${p.samplePos}) flagged though no sample was lost`);
    });
    assert.ok(r.contiguousPairs >= c.packets.length - 5, `${r.contiguousPairs} contiguous pairs of ${c.packets.length} packets`);
  });

  test('a file that is not a WAV leaves the service up with capture.state error naming the file', async () => {
    const bad = writeTempFile('not-a.wav', 'this is not a RIFF file');
    const svc = await startService({ label: 'bad-wav', config: { capture: { wavFile: bad } } });
    let last: Status | undefined;
    const st = await waitFor(
      async () => {
        last = await getStatus(svc.port);
        return last.capture.state === 'error' ? last : undefined;
      },
      { timeoutMs: 5000, what: 'capture.state error', describe: () => JSON.stringify(last?.capture) },
    );
    assert.ok((st.capture.lastError ?? '').includes(bad), JSON.stringify(st.capture));
    const c = await StreamClient.open(svc.port, 'bad-wav-client');
    assert.equal(c.closeInfo, null);
    c.close();
  });
});
