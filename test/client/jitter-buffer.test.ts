import { PerformanceObserver } from 'node:perf_hooks';
import { beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { musicSample } from '../../bench/jitter/replay';
import { JitterBuffer, type JitterBufferOptions, type JitterBufferStats } from '../../src/client/jitter-buffer';

/**
 * The jitter buffer against scripted arrival patterns on an injected clock:
 * a box sends one 128-frame packet per period (its clock may drift), the
 * network delays, bursts, drops or reorders them, and a player pulls 128
 * frames every period of the client's clock.
 */

const RATE = 48000;
const CH = 2;
const FRAMES = 128;
const PERIOD_MS = (FRAMES * 1000) / RATE;

/** Sample of stream frame `i` on channel `c`: the frame index, recoverable from the output. */
const SPAN = 2 ** 22; // 87 s of frames, exact in a float32
/** A target held at 10 ms (the steady link needs less): played frames then follow the stream one to one. */
const PINNED: Partial<JitterBufferOptions> = { targetMs: 10, minMs: 10 };

const sampleOf = (i: number, c: number): number => (c === 0 ? 1 : -1) * (((i % SPAN) + 0.5) / SPAN);
const frameOf = (v: number): number => Math.round(v * SPAN - 0.5);

interface Scenario {
  seconds: number;
  /** Arrival time (client ms) of packet k sent at `sentMs`; null: lost. */
  arrive?: (k: number, sentMs: number) => number | null;
  /** Box clock rate over the client's, minus 1, in ppm. */
  boxPpm?: number;
  firstSeq?: number;
  jitter?: Partial<JitterBufferOptions>;
  /** Called after each pull with the client time and the stats. */
  onPull?: (nowMs: number, s: JitterBufferStats) => void;
  /** Set the discontinuity flag on each packet after a lost one, as the box does on the WebSocket (protocol section 7). */
  flagGaps?: boolean;
}

interface Run {
  jb: JitterBuffer;
  stats: JitterBufferStats;
  /** Stream frame index of each played frame of channel 0; -1 for silence. */
  played: Int32Array;
  sent: number;
}

function simulate(sc: Scenario): Run {
  const jb = new JitterBuffer({ rate: RATE, channels: CH, ...sc.jitter });
  const periodBox = PERIOD_MS / (1 + (sc.boxPpm ?? 0) * 1e-6);
  const arrive = sc.arrive ?? ((_k: number, t: number) => t + 1);
  const endMs = sc.seconds * 1000;
  const events: { t: number; k: number }[] = [];
  let sent = 0;
  for (let k = 0; k * periodBox < endMs; k++, sent++) {
    const t = arrive(k, (k + 1) * periodBox);
    if (t !== null) events.push({ t, k });
  }
  events.sort((a, b) => a.t - b.t || a.k - b.k);
  const pulls = Math.floor(endMs / PERIOD_MS);
  const played = new Int32Array(pulls * FRAMES);
  const out = new Float32Array(FRAMES * CH);
  const firstSeq = sc.firstSeq ?? 1000;
  let e = 0;
  let lastK = -1;
  for (let p = 0; p < pulls; p++) {
    const now = (p + 1) * PERIOD_MS;
    for (; e < events.length && events[e]!.t <= now; e++) {
      const { t, k } = events[e]!;
      const s = new Float32Array(FRAMES * CH);
      for (let f = 0; f < FRAMES; f++) for (let c = 0; c < CH; c++) s[f * CH + c] = sampleOf(k * FRAMES + f, c);
      const flagged = sc.flagGaps === true && lastK >= 0 && k > lastK + 1;
      jb.push((firstSeq + k) >>> 0, s, t, BigInt(Math.round(k * PERIOD_MS * 1e6)), flagged);
      lastK = Math.max(lastK, k);
    }
    jb.pull(out, now);
    for (let f = 0; f < FRAMES; f++) {
      const l = out[f * CH]!;
      assert.equal(out[f * CH + 1], l === 0 ? 0 : -l, 'channels stay paired');
      played[p * FRAMES + f] = l === 0 ? -1 : frameOf(l);
    }
    sc.onPull?.(now, jb.stats());
  }
  return { jb, stats: jb.stats(), played, sent };
}

/** Played frames that do not follow their predecessor (ignoring silence): each slip, drop, gap or repeat. */
function breaks(played: Int32Array): number {
  let prev = -1;
  let n = 0;
  for (const v of played) {
    if (v < 0) continue;
    if (prev >= 0 && v !== prev + 1) n++;
    prev = v;
  }
  return n;
}

/** Deterministic pseudo-random numbers in [0, 1). */
function rng(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x = (Math.imul(x ^ (x >>> 15), 0x2c1b3c6d) + 0x9e3779b9) >>> 0;
    x ^= x >>> 12;
    return (x >>> 0) / 2 ** 32;
  };
}

describe('jitter buffer: steady stream', () => {
  test('plays every frame in order, once, from when its playout delay reaches the target; no underrun, loss, slip or stretch', () => {
    // minMs holds the target at 10 ms: the link needs less, and a falling target would be stretched toward.
    const r = simulate({ seconds: 10, jitter: PINNED });
    const s = r.stats;
    assert.equal(s.underruns, 0);
    assert.equal(s.lost, 0);
    assert.equal(s.late, 0);
    assert.equal(s.reordered, 0);
    assert.equal(s.slipFrames, 0);
    assert.equal(s.stretches, 0);
    assert.equal(s.droppedFrames, 0);
    assert.equal(s.audibleEvents, 0);
    assert.equal(s.concealedMs, 0);
    assert.equal(breaks(r.played), 0);
    const first = r.played.findIndex((v) => v >= 0);
    assert.equal(r.played[first], 0, 'starts with the first frame sent');
    assert.equal(s.targetMs, 10);
    assert.ok(s.playoutMs >= 10 && s.playoutMs <= 10 + 1, `playout ${s.playoutMs} ms, target 10`);
    // Buffered after a pull: the playout delay less the pull, the newest packet's 1 ms transit and its wait.
    assert.ok(s.latencyMs > 10 - 2 * PERIOD_MS - 1 && s.latencyMs < 10, `latency ${s.latencyMs} ms`);
  });

  test('seq wraps from 2^32-1 to 0 without a loss or a break', () => {
    const r = simulate({ seconds: 2, firstSeq: 2 ** 32 - 300, jitter: PINNED });
    assert.equal(r.stats.lost, 0);
    assert.equal(r.stats.underruns, 0);
    assert.equal(breaks(r.played), 0);
  });

  test('drift of a box on the same clock is about 0 ppm', () => {
    const jitter = rng(5);
    const r = simulate({ seconds: 20, arrive: (_k, t) => t + 1 + 3 * jitter() });
    assert.ok(Math.abs(r.stats.driftPpm) < 15, `driftPpm ${r.stats.driftPpm}`);
  });
});

describe('jitter buffer: bursts', () => {
  test('packets arriving four at a time, each burst 0-3 ms late: a few underruns while it adapts, then none, latency bounded', () => {
    let underrunsAt5s = -1;
    const j = rng(9);
    const late: number[] = [];
    const r = simulate({
      seconds: 20,
      jitter: { targetMs: 5 },
      arrive: (k) => {
        const burst = Math.floor(k / 4);
        late[burst] ??= 3 * j();
        return (burst + 1) * 4 * PERIOD_MS + late[burst]!;
      },
      onPull: (now, s) => {
        if (underrunsAt5s < 0 && now >= 5000) underrunsAt5s = s.underruns;
      },
    });
    const s = r.stats;
    assert.ok(s.underruns >= 1 && s.underruns <= 4, `${s.underruns} underruns`);
    assert.equal(s.underruns, underrunsAt5s, 'no underrun after the first 5 s');
    assert.ok(s.targetMs > 5, `target ${s.targetMs} ms grew`);
    assert.ok(s.latencyMs < 40, `latency ${s.latencyMs} ms`);
    assert.equal(s.lost, 0);
    // Each underrun resumes at the target, skipping what came too late: a packet or two each.
    assert.ok(s.late <= 2 * s.underruns, `${s.late} late packets`);
  });

  test('a 150 ms stall then everything at once: one underrun, playback resumes at the target (the late audio skipped, counted late), the target unchanged', () => {
    let before = NaN;
    let resumedAt = NaN;
    const r = simulate({
      seconds: 14,
      arrive: (_k, t) => (t > 8000 && t < 8150 ? 8150 : t) + 1,
      onPull: (now, s) => {
        if (now < 8000) before = s.targetMs;
        if (resumedAt !== resumedAt && now > 8150 && s.playoutMs > 0) resumedAt = now;
      },
    });
    const s = r.stats;
    assert.equal(s.underruns, 1);
    assert.equal(s.audibleEvents, 1);
    // Everything captured during the stall but for the target's worth came too late, and is skipped at once.
    assert.ok(s.droppedFrames > (140 - s.targetMs) * (RATE / 1000), `dropped ${s.droppedFrames} frames`);
    assert.ok(s.late >= 45, `${s.late} packets late`);
    assert.ok(resumedAt - 8150 < 2 * PERIOD_MS, `resumed ${resumedAt - 8150} ms after the burst`);
    assert.equal(s.targetMs, before, 'one stall does not move the target');
    assert.ok(Math.abs(s.playoutMs - s.targetMs - 0.5) <= 0.5, `playout ${s.playoutMs} ms, target ${s.targetMs} ms`);
    assert.equal(s.lost, 0);
    // The dropout: the concealment for what the buffer lacked, then silence, about the stall less the buffer.
    assert.ok(s.concealedMs > 150 - 20 && s.concealedMs < 150, `concealed ${s.concealedMs} ms`);
  });

  test('the link holds 40 ms every 200 ms (a phone in Wi-Fi power save): the target rises to cover the holds and the underruns stop', () => {
    let at10 = -1;
    const r = simulate({
      seconds: 30,
      arrive: (_k, t) => {
        const phase = t % 200;
        return (phase < 40 ? t - phase + 40 : t) + 1;
      },
      onPull: (now, s) => {
        if (at10 < 0 && now >= 10000) at10 = s.underruns;
      },
    });
    const s = r.stats;
    assert.ok(s.targetMs > 40 && s.targetMs < 50, `target ${s.targetMs} ms`);
    assert.equal(s.underruns, at10, 'no underrun after 10 s');
  });
});

describe('jitter buffer: gaps and loss', () => {
  for (const flagGaps of [false, true]) {
  test(`1% of packets lost${flagGaps ? ', each gap flagged as a discontinuity' : ''}: each counted once, its slot plays silence, each gap one audible event, no underrun, the rest in order`, () => {
    const drop = rng(11);
    const dropped = new Set<number>();
    const r = simulate({
      seconds: 10,
      flagGaps,
      // Silence, so every played frame still names its stream frame (the waveform concealment is tested below).
      jitter: { ...PINNED, conceal: 'silence' },
      arrive: (k, t) => {
        if (k > 10 && drop() < 0.01) {
          dropped.add(k);
          return null;
        }
        return t + 1;
      },
    });
    const s = r.stats;
    // Losses in the last few packets are not known yet (no later packet arrived).
    assert.ok(s.lost >= dropped.size - 1 && s.lost <= dropped.size, `lost ${s.lost}, dropped ${dropped.size}`);
    assert.ok(dropped.size > 20);
    assert.equal(s.underruns, 0);
    assert.equal(s.late, 0);
    // Concealment counts at play time: the last gap may not have had its turn yet.
    assert.ok(s.concealedFrames >= (s.lost - 1) * FRAMES && s.concealedFrames <= s.lost * FRAMES, `${s.concealedFrames} frames concealed`);
    let gaps = 0;
    for (const k of dropped) if (!dropped.has(k - 1)) gaps++;
    assert.ok(s.concealedLosses >= gaps - 1 && s.concealedLosses <= gaps, `${s.concealedLosses} concealed losses, ${gaps} gaps`);
    assert.equal(s.audibleEvents, s.concealedLosses);
    // Every played frame is the one its position says: the gaps are silence in place of the lost frames.
    const first = r.played.findIndex((v) => v >= 0);
    for (let i = first; i < r.played.length; i++) {
      const v = r.played[i]!;
      if (v >= 0) assert.equal(v, i - first);
      else assert.ok(dropped.has(Math.floor((i - first) / FRAMES)), `silence at frame ${i - first}, whose packet arrived`);
    }
  });
  }

  test('the stream stops: one underrun (not one per pull), and it resumes after the target is buffered again', () => {
    const r = simulate({ seconds: 6, arrive: (_k, t) => (t > 2000 && t < 4000 ? null : t + 1) });
    assert.equal(r.stats.underruns, 1);
    assert.ok(r.played[r.played.length - 1]! > 0, 'plays again');
  });

  test('a discontinuity flag without a seq gap places the packet right after what is buffered, keeping the drift estimate (box times go on)', () => {
    const r = simulate({ seconds: 10, jitter: PINNED });
    const jb = r.jb;
    const before = jb.stats();
    const t = 10000 + PERIOD_MS;
    jb.push(50, new Float32Array(FRAMES * CH).fill(0.25), t + 1, BigInt(Math.round(t * 1e6)), true);
    const after = jb.stats();
    assert.equal(after.bufferedFrames, before.bufferedFrames + FRAMES);
    assert.equal(after.lost, before.lost, 'a restart is not a loss');
    assert.equal(after.driftPpm, before.driftPpm);
  });

  test('a seq jump of thousands of packets is a new stretch, not thousands of lost packets', () => {
    const r = simulate({ seconds: 4, arrive: (_k, t) => t + 1, firstSeq: 0 });
    const jb = r.jb;
    const before = jb.stats().lost;
    jb.push(1_000_000, new Float32Array(FRAMES * CH), 4001);
    assert.equal(jb.stats().lost, before);
  });
});

describe('jitter buffer: concealment of lost packets', () => {
  /**
   * A 997 Hz tone (its period, 48.1 frames, divides no packet), a different phase per channel, amplitude 0.5; `hz`
   * changes it for one test (a bass's low E).
   */
  let HZ = 997;
  const AMP = 0.5;
  const tone = (i: number, c: number): number => AMP * Math.sin((2 * Math.PI * HZ * i) / RATE + 0.3 + c);
  const toneStep = (): number => AMP * 2 * Math.sin((Math.PI * HZ) / RATE);
  beforeEach(() => {
    HZ = 997;
  });

  /** Streams the tone with packets `lost` missing (later ones arrive on time); returns output aligned to stream frames. */
  function play(conceal: 'waveform' | 'silence', lost: (k: number) => boolean): { out: Float32Array; start: number; stats: JitterBufferStats } {
    const jb = new JitterBuffer({ rate: RATE, channels: CH, ...PINNED, conceal });
    const pulls = 600;
    const out = new Float32Array(pulls * FRAMES * CH);
    const buf = new Float32Array(FRAMES * CH);
    for (let p = 0; p < pulls; p++) {
      const now = (p + 1) * PERIOD_MS;
      const k = p;
      if (!lost(k)) {
        const s = new Float32Array(FRAMES * CH);
        for (let f = 0; f < FRAMES; f++) for (let c = 0; c < CH; c++) s[f * CH + c] = tone(k * FRAMES + f, c);
        jb.push(k, s, now - 1);
      }
      jb.pull(buf, now);
      out.set(buf, p * FRAMES * CH);
    }
    const stats = jb.stats();
    assert.equal(stats.slipFrames, 0, 'no slips: until any underrun, output frame i is stream frame i - start');
    // The tone starts at sin(0.3), not 0: the first non-zero frame is stream frame 0.
    let start = 0;
    while (out[start * CH] === 0) start++;
    return { out, start, stats };
  }

  /** Tone power over error power for stream frames [from, to), both channels, dB. */
  function snrDb(r: { out: Float32Array; start: number }, from: number, to: number): number {
    let sig = 0;
    let err = 0;
    for (let i = from; i < to; i++) {
      for (let c = 0; c < CH; c++) {
        const want = tone(i, c);
        const got = r.out[(r.start + i) * CH + c]!;
        sig += want * want;
        err += (got - want) ** 2;
      }
    }
    return 10 * Math.log10(sig / Math.max(err, 1e-30));
  }

  /** Largest step between neighbouring output frames over stream frames [from, to): a click shows as a step far above the tone's own. */
  function maxStep(r: { out: Float32Array; start: number }, from: number, to: number): number {
    let m = 0;
    for (let i = from; i < to; i++) for (let c = 0; c < CH; c++) m = Math.max(m, Math.abs(r.out[(r.start + i) * CH + c]! - r.out[(r.start + i - 1) * CH + c]!));
    return m;
  }

  for (const hz of [997, 41.2]) {
  test(`one packet lost from a held ${hz} Hz tone: the repeat stays within 20 dB of the tone and leaves no click; silence in its place would be 0 dB and a step of the full amplitude`, () => {
    HZ = hz;
    const gap = (k: number): boolean => k === 300;
    const wave = play('waveform', gap);
    const quiet = play('silence', gap);
    const slot: [number, number] = [300 * FRAMES, 301 * FRAMES];
    const waveSnr = snrDb(wave, ...slot);
    const quietSnr = snrDb(quiet, ...slot);
    assert.ok(waveSnr >= 20, `waveform concealment: ${waveSnr.toFixed(1)} dB against the tone it stands in for`);
    assert.ok(Math.abs(quietSnr) < 0.01, `silence: ${quietSnr.toFixed(2)} dB`);
    const around: [number, number] = [299 * FRAMES, 302 * FRAMES];
    assert.ok(maxStep(wave, ...around) <= 1.5 * toneStep(), `largest step ${maxStep(wave, ...around).toFixed(4)}, the tone's own ${toneStep().toFixed(4)}`);
    assert.ok(maxStep(quiet, ...around) > 4 * toneStep(), 'silence steps (the click this replaces)');
    // Bit-exact outside the slot and its 1 ms merge: the repeat never touches received audio.
    for (let i = 250 * FRAMES; i < 299 * FRAMES; i++) assert.equal(wave.out[(wave.start + i) * CH], Math.fround(tone(i, 0)), `frame ${i}`);
    for (let i = 301 * FRAMES + 48; i < 350 * FRAMES; i++) assert.equal(wave.out[(wave.start + i) * CH], Math.fround(tone(i, 0)), `frame ${i}`);
    assert.equal(wave.stats.lost, 1);
    assert.equal(wave.stats.concealedFrames, FRAMES);
    assert.equal(wave.stats.concealedLosses, 1);
    assert.equal(wave.stats.underruns, 0);
  });
  }

  test('the stream stops for 53 ms (an underrun): the repeat holds 5 ms, fades out by 20 ms, then silence; the tone fades back in without a click', () => {
    const wave = play('waveform', (k) => k >= 300 && k < 320);
    const quiet = play('silence', (k) => k >= 300 && k < 320);
    assert.equal(wave.stats.underruns, 1);
    // Output index of stream frame 300 × 128, where the buffer ran dry.
    const dry = wave.start + 300 * FRAMES;
    let sig = 0;
    let err = 0;
    for (let j = 0; j < 240; j++) {
      for (let c = 0; c < CH; c++) {
        sig += tone(300 * FRAMES + j, c) ** 2;
        err += (wave.out[(dry + j) * CH + c]! - tone(300 * FRAMES + j, c)) ** 2;
      }
    }
    assert.ok(10 * Math.log10(sig / err) >= 20, `first 5 ms after running dry: ${(10 * Math.log10(sig / err)).toFixed(1)} dB against the tone`);
    for (let i = dry + 960; i < dry + 1900; i++) assert.equal(wave.out[i * CH], 0, `output frame ${i - dry} after running dry is silent`);
    const steps = (r: { out: Float32Array; start: number }): number => {
      let m = 0;
      for (let i = (r.start + 1) * CH; i < r.out.length; i++) m = Math.max(m, Math.abs(r.out[i]! - r.out[i - CH]!));
      return m;
    };
    assert.ok(steps(wave) <= 1.5 * toneStep(), `largest step over the whole run ${steps(wave).toFixed(4)}, the tone's own ${toneStep().toFixed(4)}`);
    assert.ok(steps(quiet) > 4 * toneStep(), `silence: largest step ${steps(quiet).toFixed(4)} (the clicks this replaces)`);
    assert.ok(wave.out.subarray(-FRAMES * CH).some((v) => v !== 0), 'plays again');
  });

  test('1 % of packets lost from music (two voices of harmonic notes): the concealment is at least 3 dB closer to what was lost than silence (0 dB)', () => {
    // The replay tool's test signal. Two notes have no short common period, so repetition is a compromise here.
    const music = (conceal: 'waveform' | 'silence'): number => {
      const jb = new JitterBuffer({ rate: RATE, channels: CH, ...PINNED, conceal });
      const r = rng(7);
      const lost = new Set<number>();
      for (let k = 50; k < 3700; k++) if (r() < 0.01) lost.add(k);
      const pulls = 3750;
      const out = new Float32Array(pulls * FRAMES * CH);
      const buf = new Float32Array(FRAMES * CH);
      for (let k = 0; k < pulls; k++) {
        if (!lost.has(k)) {
          const s = new Float32Array(FRAMES * CH);
          for (let f = 0; f < FRAMES; f++) for (let c = 0; c < CH; c++) s[f * CH + c] = musicSample(k * FRAMES + f, c);
          jb.push(k, s, (k + 1) * PERIOD_MS + 1);
        }
        jb.pull(buf, (k + 1) * PERIOD_MS + 1);
        out.set(buf, k * FRAMES * CH);
      }
      assert.equal(jb.stats().slipFrames + jb.stats().stretches + jb.stats().underruns, 0, 'output frame i is stream frame i - start');
      let start = 0;
      while (out[start * CH] === 0) start++;
      let sig = 0;
      let err = 0;
      for (const k of lost) {
        for (let f = 0; f < FRAMES; f++) {
          for (let c = 0; c < CH; c++) {
            const want = musicSample(k * FRAMES + f, c);
            sig += want * want;
            err += (out[(start + k * FRAMES + f) * CH + c]! - want) ** 2;
          }
        }
      }
      return 10 * Math.log10(sig / err);
    };
    const wave = music('waveform');
    const quiet = music('silence');
    assert.ok(Math.abs(quiet) < 0.01, `silence: ${quiet.toFixed(2)} dB`);
    assert.ok(wave >= quiet + 3, `waveform concealment: ${wave.toFixed(1)} dB against the lost music`);
  });

  test('a packet that arrives within its gap but before its turn plays bit-exact: concealment only covers what is still missing at play time', () => {
    const jb = new JitterBuffer({ rate: RATE, channels: 1, ...PINNED });
    const pkt = (k: number): Float32Array => Float32Array.from({ length: FRAMES }, (_v, f) => tone(k * FRAMES + f, 0));
    // Packet k is captured by (k + 1) periods and arrives 1 ms later; 4 comes after 5, still before its turn.
    const at = (k: number): number => (k + 1) * PERIOD_MS + 1;
    for (let k = 0; k < 4; k++) jb.push(k, pkt(k), at(k));
    jb.push(5, pkt(5), at(5));
    jb.push(4, pkt(4), at(5) + 0.5);
    // The first frame is due when its playout delay (now − 0 − the 1 ms floor) reaches 10.5 ms; a pull a period.
    const out = new Float32Array(FRAMES);
    for (let j = 0; j < 6; j++) {
      jb.pull(out, 11.5 + j * PERIOD_MS);
      for (let f = 0; f < FRAMES; f++) assert.equal(out[f], Math.fround(tone(j * FRAMES + f, 0)), `frame ${j * FRAMES + f}`);
    }
    const s = jb.stats();
    assert.equal(s.concealedFrames, 0);
    assert.equal(s.reordered, 1);
    assert.equal(s.lost, 0);
  });
});

describe('jitter buffer: reordering and late packets', () => {
  test('pairs swapped every 10 packets: counted as reordered, no loss, every frame plays in order', () => {
    const r = simulate({
      seconds: 5,
      jitter: PINNED,
      arrive: (k, t) => {
        if (k % 10 === 3) return t + PERIOD_MS + 1.5; // arrives after k + 1
        return t + 1;
      },
    });
    const s = r.stats;
    assert.ok(s.reordered >= 180, `reordered ${s.reordered}`);
    assert.equal(s.lost, 0);
    assert.equal(s.late, 0);
    assert.equal(s.underruns, 0);
    assert.equal(breaks(r.played), 0);
  });

  test('a packet 60 ms late: its slot plays silence, it counts as late and lost, and is dropped when it comes', () => {
    const r = simulate({ seconds: 4, jitter: { ...PINNED, conceal: 'silence' }, arrive: (k, t) => (k === 500 ? t + 60 : t + 1) });
    const s = r.stats;
    assert.equal(s.late, 1);
    assert.equal(s.lost, 1);
    assert.equal(s.reordered, 0);
    assert.equal(s.underruns, 0);
    assert.equal(s.concealedFrames, FRAMES);
    assert.equal(s.concealedLosses, 1);
    assert.ok(!r.played.includes(500 * FRAMES), 'the late audio never plays');
    assert.ok(r.played.includes(501 * FRAMES));
  });

  test('a duplicate packet is ignored', () => {
    const jb = new JitterBuffer({ rate: RATE, channels: 1, targetMs: 2.5 });
    const a = new Float32Array(FRAMES).fill(0.25);
    jb.push(5, a, 0);
    jb.push(5, a, 0);
    assert.equal(jb.stats().bufferedFrames, FRAMES);
  });
});

describe('jitter buffer: clock drift', () => {
  for (const ppm of [200, -200]) {
    test(`a box clock ${ppm > 0 ? 'fast' : 'slow'} by ${Math.abs(ppm)} ppm with 0-4 ms jitter: drift estimated within 20 ppm, played away by slips and stretches, no underrun storm, the playout delay held`, () => {
      const j = rng(ppm > 0 ? 1 : 2);
      let maxBuffered = 0;
      const r = simulate({
        seconds: 60,
        boxPpm: ppm,
        jitter: { targetMs: 10 },
        arrive: (_k, t) => t + 1 + 4 * j(),
        onPull: (_now, s) => {
          maxBuffered = Math.max(maxBuffered, s.bufferedFrames);
        },
      });
      const s = r.stats;
      assert.ok(Math.abs(s.driftPpm - ppm) < 20, `driftPpm ${s.driftPpm.toFixed(1)}, true ${ppm}`);
      assert.ok(s.underruns <= 2, `${s.underruns} underruns`);
      // 60 s at 48 kHz × 200 ppm = 576 frames. A fast box's surplus can only go by slips and accelerates; a slow
      // box's shortfall is also taken from the level while the target falls to what the link needs.
      const want = (ppm * 1e-6 * RATE * 60) | 0;
      const net = s.slipFrames + Math.round((s.acceleratedMs - s.expandedMs) * (RATE / 1000));
      assert.ok(Math.sign(net) === Math.sign(ppm) || ppm < 0, `played away ${net} frames, drift needs about ${want}`);
      if (ppm > 0) assert.ok(net > want / 2, `played away ${net} frames, drift needs about ${want}`);
      assert.ok(Math.abs(s.playoutMs - s.targetMs - 0.5) < 2, `playout ${s.playoutMs} ms, target ${s.targetMs} ms`);
      assert.ok(maxBuffered < ((s.targetMs + 15) * RATE) / 1000, `buffered up to ${maxBuffered} frames`);
      assert.equal(s.droppedFrames, 0);
    });
  }

  test('without box timestamps the stream position is the box clock', () => {
    const jb = new JitterBuffer({ rate: RATE, channels: 1 });
    const period = PERIOD_MS / (1 + 300e-6);
    const out = new Float32Array(FRAMES);
    for (let k = 0; k < 375 * 20; k++) {
      jb.push(k, new Float32Array(FRAMES), (k + 1) * period + 0.5);
      jb.pull(out, (k + 1) * PERIOD_MS);
    }
    assert.ok(Math.abs(jb.stats().driftPpm - 300) < 10, `driftPpm ${jb.stats().driftPpm}`);
  });
});

describe('jitter buffer: adaptation', () => {
  test('random 0-15 ms delays against a 3 ms start: the target rises to cover them and the underruns stop within 10 s', () => {
    const j = rng(3);
    let at10 = -1;
    const r = simulate({
      seconds: 30,
      jitter: { targetMs: 3 },
      arrive: (_k, t) => t + 15 * j() ** 3,
      onPull: (now, s) => {
        if (at10 < 0 && now >= 10000) at10 = s.underruns;
      },
    });
    const s = r.stats;
    assert.ok(s.underruns >= 1, 'the small target underran');
    assert.ok(s.targetMs > 15, `target ${s.targetMs}`);
    assert.equal(s.underruns, at10, 'no underrun after 10 s');
  });

  test('the link calms down after 20 s of 0-15 ms delays: the target falls to what the clean link needs within 40 s, played away by time-stretching, without a dropout', () => {
    const j = rng(4);
    let at20: JitterBufferStats | null = null;
    let underrunsAt10 = -1;
    const r = simulate({
      seconds: 60,
      arrive: (_k, t) => t + 1 + (t < 20000 ? 15 * j() ** 3 : 0),
      onPull: (now, s) => {
        if (underrunsAt10 < 0 && now >= 10000) underrunsAt10 = s.underruns;
        if (!at20 && now >= 20000) at20 = s;
      },
    });
    const s = r.stats;
    assert.ok(at20!.targetMs > 15, `target at 20 s: ${at20!.targetMs}`);
    assert.ok(s.targetMs < 2 * PERIOD_MS + 0.5, `target at 60 s: ${s.targetMs}`);
    assert.ok(Math.abs(s.playoutMs - s.targetMs - 0.5) < 1, `playout ${s.playoutMs} ms`);
    assert.equal(s.underruns, underrunsAt10, 'no underrun after 10 s');
    assert.ok(s.acceleratedMs - at20!.acceleratedMs > 8, `accelerated ${s.acceleratedMs - at20!.acceleratedMs} ms after the jitter stopped`);
    assert.equal(s.droppedFrames, at20!.droppedFrames, 'nothing dropped at once');
  });

  test('maxMs caps the target', () => {
    let max = 0;
    simulate({
      seconds: 20,
      jitter: { targetMs: 5, maxMs: 8 },
      arrive: (k) => Math.ceil((k + 1) / 8) * 8 * PERIOD_MS,
      onPull: (_now, s) => {
        max = Math.max(max, s.targetMs);
      },
    });
    assert.ok(max <= 8, `target up to ${max}`);
  });
});

describe('jitter buffer: options and input', () => {
  const bad: [Partial<JitterBufferOptions>, RegExp][] = [
    [{ rate: 0 }, /rate is 0; allowed: an integer 1-768000 Hz/],
    [{ channels: 65 }, /channels is 65; allowed: an integer 1-64/],
    [{ targetMs: 500 }, /targetMs is 500; allowed: minMs-maxMs \(2.5-200\)/],
    [{ minMs: 50, maxMs: 20, targetMs: 30 }, /minMs 50 is above maxMs 20/],
    [{ maxMs: NaN }, /maxMs is NaN; allowed: a finite number above 0/],
    [{ maxSlipPpm: -1 }, /maxSlipPpm is -1; allowed: 0-20000/],
    [{ eventCostMs: -2 }, /eventCostMs is -2; allowed: 0-1000/],
    [{ eventCostMs: NaN }, /eventCostMs is NaN; allowed: 0-1000/],
    [{ freeMs: -1 }, /freeMs is -1; allowed: 0-1000/],
    [{ conceal: 'loud' as 'silence' }, /conceal is "loud"; allowed: "waveform" or "silence"/],
  ];
  for (const [opts, message] of bad) {
    test(`${JSON.stringify(opts)} is a RangeError naming the value`, () => {
      assert.throws(() => new JitterBuffer({ rate: RATE, channels: 2, ...opts }), (e: unknown) => e instanceof RangeError && message.test((e as Error).message));
    });
  }

  test('push of a partial frame is refused and the buffer is unchanged', () => {
    const jb = new JitterBuffer({ rate: RATE, channels: 2 });
    jb.push(1, new Float32Array(256), 0);
    assert.throws(() => jb.push(2, new Float32Array(255), 1), /255 samples is not a whole number of 2-channel frames/);
    assert.equal(jb.stats().bufferedFrames, 128);
    assert.equal(jb.stats().lost, 0);
  });

  test('a change of packet size starts a new stretch after what is buffered', () => {
    const jb = new JitterBuffer({ rate: RATE, channels: 1, targetMs: 2.5 });
    // Without box times the stream position is the box clock: 128 frames end at 2.67 ms, 240 more at 7.67 ms.
    jb.push(1, new Float32Array(128).fill(0.5), 128 / 48 + 0.5);
    jb.push(0, new Float32Array(240).fill(0.25), 368 / 48 + 0.5);
    assert.equal(jb.stats().bufferedFrames, 368);
    // Frame 0 is due at 0.5 + 3 ms (the target and half the band).
    const out = new Float32Array(128);
    jb.pull(out, 3.5);
    assert.equal(out[0], 0.5);
    assert.equal(out[127], 0.5);
    jb.pull(out, 3.5 + PERIOD_MS);
    assert.equal(out[0], 0.25);
  });

  test('push and pull allocate nothing (AudioWorklet rule): a million of each cause no garbage collection, with stretching, concealment and resuming in the mix', async () => {
    // 48-frame packets are 1 ms: every time is a whole number, so no double argument gets boxed by the engine
    // (no box times either: 1e6 × k would leave the small-integer range). The target is held at 10 ms or more, so the
    // 8 ms steps in the link's delay below are stretched away rather than slipped.
    const jb = new JitterBuffer({ rate: RATE, channels: CH, targetMs: 10, minMs: 10 });
    // A held 750 Hz tone (64 frames a period) that stretches can splice.
    const pkts = Array.from({ length: 4 }, (_v, p) => Float32Array.from({ length: 48 * CH }, (_x, i) => 0.3 * Math.sin((2 * Math.PI * (p * 48 + (i >> 1))) / 64)));
    const out = new Float32Array(48 * CH);
    let k = 0;
    const step = (i: number): void => {
      // Packet k is sent at k ms. The link's delay steps between 0 and 8 ms every 5 s (so the floor moves: the
      // buffer accelerates and expands), it holds 60 ms every 5 s (underrun, resume at the target), every 1000th
      // packet is lost (concealment), and every 3000th pull repeats a time.
      const phase = i % 5000;
      const due = i - (i % 10000 < 5000 ? 0 : 8) - (phase < 60 ? phase : 0);
      for (; k <= due; k++) if (k % 1000 !== 999) jb.push(k, pkts[k & 3]!, i);
      jb.pull(out, i % 3000 === 0 ? i - 1 : i);
    };
    const gcs: number[] = [];
    const obs = new PerformanceObserver((list) => {
      for (const e of list.getEntries()) gcs.push(e.startTime);
    });
    obs.observe({ entryTypes: ['gc'] });
    // Counts the collections while `count` steps run. Node queues a collection's entry from the end of the GC
    // with a native immediate, which runs before the JS immediates of the same turn: after one turn every entry
    // of the block is either delivered or in the observer's buffer, which takeRecords() empties.
    let i = 0;
    const collectionsDuring = async (count: number): Promise<number> => {
      const t0 = performance.now();
      for (const end = i + count; i < end; i++) step(i);
      const t1 = performance.now();
      await new Promise((r) => setImmediate(r));
      for (const e of obs.takeRecords()) gcs.push(e.startTime);
      return gcs.filter((t) => t >= t0 && t <= t1).length;
    };
    // Unoptimised code boxes doubles (about 1700 collections per million steps under --no-opt), and the optimising
    // compiler runs on a background thread that a loaded CI machine can starve for seconds. So warm up in blocks
    // until one runs without a collection (bounded: 60 blocks), then measure: the claim is about optimised code,
    // which is what an AudioWorklet runs after its first second.
    let warmBlocks = 0;
    for (; warmBlocks < 60; warmBlocks++) if ((await collectionsDuring(100_000)) === 0) break;
    const before = jb.stats();
    const during = await collectionsDuring(1_000_000);
    obs.disconnect();
    // An object or a view per call (16+ bytes × 2 million) would take dozens of scavenges.
    assert.ok(during <= 1, `${during} garbage collections during a million push+pull (after ${warmBlocks + 1} warm-up blocks)`);
    const s = jb.stats();
    const what = JSON.stringify(s);
    assert.ok(s.lost > before.lost && s.concealedLosses > before.concealedLosses, `losses concealed: ${what}`);
    assert.ok(s.underruns > before.underruns && s.droppedFrames > before.droppedFrames, `underruns and resumes: ${what}`);
    assert.ok(s.stretches > before.stretches && s.acceleratedMs > before.acceleratedMs && s.expandedMs > before.expandedMs, `stretches both ways: ${what}`);
  });

  test('pull before any packet plays silence and counts no underrun', () => {
    const jb = new JitterBuffer({ rate: RATE, channels: 2 });
    const out = new Float32Array(256).fill(1);
    jb.pull(out, 0);
    jb.pull(out, 3);
    assert.ok(out.every((v) => v === 0));
    assert.equal(jb.stats().underruns, 0);
  });
});
