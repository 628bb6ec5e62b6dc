import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { checkMixAgainstMetadata, resolveMix } from '../../src/control/mix-request';
import { ChannelMetadata } from '../../src/control/channel-metadata';
import { ControlError, mixSchema, presetNameProblem, setMetadataSchema, type Mix } from '../../src/control/control-messages';

/** Resolution of mix messages against the engineer's metadata (no state store: metadata kept in memory). */

function meta(channels: object[], maxOutputDb: number | null = null): ChannelMetadata {
  const m = new ChannelMetadata(null);
  m.replace(setMetadataSchema.parse({ type: 'set-metadata', channels }), 16);
  if (maxOutputDb !== null) m.setMaxOutputDb(maxOutputDb);
  return m;
}

function mix(body: object): Mix {
  return mixSchema.parse({ type: 'mix', ...body });
}

function code(fn: () => void): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ControlError, `not a ControlError: ${String(err)}`);
    return `${err.code}: ${err.message}`;
  }
  assert.fail('did not throw');
}

describe('groups', () => {
  const m = meta([
    { ch: 0, name: 'Kick', group: 'drums' },
    { ch: 1, name: 'Snare', group: 'drums' },
    { ch: 2, name: 'Vox' },
  ]);

  test('a group gain is added to every member and leaves other channels alone', () => {
    const r = resolveMix(mix({ channels: [{ ch: 0, gainDb: -2 }, { ch: 1, gainDb: 1 }, { ch: 2, gainDb: -5 }], groups: [{ name: 'drums', gainDb: -6 }] }), m);
    assert.deepEqual(
      r.params.channels.map((c) => c.gainDb),
      [-8, -5, -5],
    );
  });

  test('a group mute mutes its members only; a group at off (null) silences them', () => {
    const r = resolveMix(mix({ channels: [{ ch: 0 }, { ch: 1 }, { ch: 2 }], groups: [{ name: 'drums', mute: true }] }), m);
    assert.deepEqual(r.params.channels.map((c) => c.mute), [true, true, false]);
    const off = resolveMix(mix({ channels: [{ ch: 0 }, { ch: 2 }], groups: [{ name: 'drums', gainDb: null }] }), m);
    assert.equal(off.params.channels[0]!.gainDb, -Infinity);
    assert.equal(off.params.channels[2]!.gainDb, 0);
  });

  test('channel + group gain is capped at +10 dB', () => {
    const r = resolveMix(mix({ channels: [{ ch: 0, gainDb: 8 }], groups: [{ name: 'drums', gainDb: 6 }] }), m);
    assert.equal(r.params.channels[0]!.gainDb, 10);
  });

  test('an unknown or repeated group is refused with bad-group naming it', () => {
    assert.match(code(() => checkMixAgainstMetadata(mix({ channels: [], groups: [{ name: 'drumz' }] }), m)), /^bad-group: group "drumz" does not exist/);
    assert.match(code(() => checkMixAgainstMetadata(mix({ channels: [], groups: [{ name: 'drums' }, { name: 'drums' }] }), m)), /^bad-group: group "drums" appears more than once/);
  });

  test('a group that was removed after the mix was saved is ignored on resolution, not fatal', () => {
    const r = resolveMix(mix({ channels: [{ ch: 2, gainDb: -1 }], groups: [{ name: 'gone', gainDb: -20 }] }), m);
    assert.equal(r.params.channels[2]!.gainDb, -1);
  });
});

describe('stereo pairs', () => {
  const m = meta([{ ch: 4, name: 'Keys L', link: 5 }]);

  test('the lower channel sets both sides: left hard left, right hard right, same gain, mute and solo', () => {
    const r = resolveMix(mix({ channels: [{ ch: 4, gainDb: -3, solo: true }] }), m);
    assert.deepEqual(r.params.channels[4], { gainDb: -3, pan: -1, mute: false, solo: true });
    assert.deepEqual(r.params.channels[5], { gainDb: -3, pan: 1, mute: false, solo: true });
  });

  test('pan is a cosine balance: +0.5 takes the left side down 3.01 dB, −1 silences the right', () => {
    const half = resolveMix(mix({ channels: [{ ch: 4, gainDb: 0, pan: 0.5 }] }), m);
    assert.ok(Math.abs(half.params.channels[4]!.gainDb - 20 * Math.log10(Math.SQRT1_2)) < 1e-9);
    assert.equal(half.params.channels[5]!.gainDb, 0);
    const left = resolveMix(mix({ channels: [{ ch: 4, gainDb: 0, pan: -1 }] }), m);
    assert.equal(left.params.channels[4]!.gainDb, 0);
    assert.equal(left.params.channels[5]!.gainDb, -Infinity);
  });

  test('an entry for the right side of a pair is refused with bad-channel naming the pair', () => {
    assert.match(code(() => checkMixAgainstMetadata(mix({ channels: [{ ch: 5 }] }), m)), /^bad-channel: channel 5 is the right side of the stereo pair 4\/5; set the pair through channel 4/);
  });
});

describe('box-wide output limit', () => {
  test('it lowers a higher client ceiling, keeps a lower one, and turns a disabled limiter on', () => {
    const m = meta([], -6);
    assert.deepEqual(resolveMix(mix({ channels: [] }), m).limiter, { enabled: true, ceilingDb: -6 });
    assert.deepEqual(resolveMix(mix({ channels: [], limiter: { ceilingDb: -12 } }), m).limiter, { enabled: true, ceilingDb: -12 });
    assert.deepEqual(resolveMix(mix({ channels: [], limiter: { enabled: false } }), m).limiter, { enabled: true, ceilingDb: -6 });
    assert.deepEqual(resolveMix(mix({ channels: [], limiter: { enabled: false } }), meta([])).limiter, { enabled: false, ceilingDb: -1 });
  });
});

test('two messages that resolve to the same mix share a key; a different one does not', () => {
  const m = meta([{ ch: 0, group: 'drums' }]);
  const a = resolveMix(mix({ channels: [{ ch: 0, gainDb: -6 }] }), m);
  const b = resolveMix(mix({ channels: [{ ch: 0, gainDb: 0 }], groups: [{ name: 'drums', gainDb: -6 }] }), m);
  const c = resolveMix(mix({ channels: [{ ch: 0, gainDb: -5 }] }), m);
  assert.equal(a.key, b.key);
  assert.notEqual(a.key, c.key);
});

describe('set-metadata validation', () => {
  const bad = (channels: object[], count: number | null = 16) =>
    code(() => new ChannelMetadata(null).replace(setMetadataSchema.parse({ type: 'set-metadata', channels }), count));

  test('a one-sided link is made mutual, and a pair gets its group on both sides', () => {
    const m = meta([{ ch: 2, link: 3, group: 'keys' }]);
    assert.deepEqual(m.list(), [
      { ch: 2, link: 3, group: 'keys' },
      { ch: 3, link: 2, group: 'keys' },
    ]);
  });

  test('every inconsistency is refused with bad-metadata naming it', () => {
    assert.match(bad([{ ch: 20 }]), /^bad-metadata: channel 20 does not exist; the device has 16 channels/);
    assert.match(bad([{ ch: 1 }, { ch: 1 }]), /channel 1 appears more than once/);
    assert.match(bad([{ ch: 1, link: 1 }]), /cannot be linked to itself/);
    assert.match(bad([{ ch: 1, link: 30 }]), /linked to channel 30, which does not exist/);
    assert.match(bad([{ ch: 1, link: 2 }, { ch: 2, link: 3 }]), /a channel belongs to one stereo pair/);
    assert.match(bad([{ ch: 1, link: 2, group: 'a' }, { ch: 2, group: 'b' }]), /stereo pair but in groups "a" and "b"/);
  });

  test('a refused replacement leaves the previous metadata in place', () => {
    const m = meta([{ ch: 0, name: 'Kick' }]);
    assert.throws(() => m.replace(setMetadataSchema.parse({ type: 'set-metadata', channels: [{ ch: 40 }] }), 16));
    assert.deepEqual(m.list(), [{ ch: 0, name: 'Kick' }]);
  });

  test('a colour must be #rrggbb and is stored lower-case', () => {
    assert.equal(setMetadataSchema.safeParse({ type: 'set-metadata', channels: [{ ch: 0, color: 'red' }] }).success, false);
    assert.deepEqual(meta([{ ch: 0, color: '#A0B0C0' }]).list(), [{ ch: 0, color: '#a0b0c0' }]);
  });
});

describe('preset names', () => {
  test('ordinary names are accepted', () => {
    for (const n of ['Ballad', 'Set 2 – loud', 'ü', 'a'.repeat(32)]) assert.equal(presetNameProblem(n), null, n);
  });
  test('empty, blank, huge, padded, path-like and control-character names are refused with the reason', () => {
    const cases: [string, RegExp][] = [
      ['', /is empty/],
      ['   ', /is empty/],
      ['x'.repeat(33), /has 33 characters; allowed: 1-32/],
      ['y'.repeat(100000), /has 100000 characters/],
      [' lead', /leading or trailing space/],
      ['../../etc/passwd', /looks like a path/],
      ['a/b', /looks like a path/],
      ['a\\b', /looks like a path/],
      ['.hidden', /looks like a path/],
      ['tab\there', /control character/],
    ];
    for (const [name, re] of cases) {
      const p = presetNameProblem(name);
      assert.ok(p !== null && re.test(p), `${JSON.stringify(name.slice(0, 20))}: ${p}`);
      assert.ok(p.length < 200, 'a huge name is not echoed whole');
    }
  });
});
