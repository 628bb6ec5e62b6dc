import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { deviceIdFromHostname, topicsFor } from '../../src/health/mqtt-options';
import { TOPIC_ID_PATTERN } from '../../src/config/config-schema';

describe('deviceIdFromHostname', () => {
  test('lower-cases and replaces every character a topic level should not hold', () => {
    assert.equal(deviceIdFromHostname('StageBox-Left'), 'stagebox-left');
    assert.equal(deviceIdFromHostname('box.local'), 'box-local');
    assert.equal(deviceIdFromHostname('a+b#c/d e'), 'a-b-c-d-e');
    assert.equal(deviceIdFromHostname('_-x-_'), 'x');
  });

  test('falls back to "stagebox" when nothing usable is left, and never exceeds 64 characters', () => {
    assert.equal(deviceIdFromHostname('+++'), 'stagebox');
    assert.equal(deviceIdFromHostname(''), 'stagebox');
    const long = deviceIdFromHostname('x'.repeat(100));
    assert.equal(long.length, 64);
    for (const h of ['Ünïcödé-höst', '---', 'A'.repeat(80) + '.lan']) assert.match(deviceIdFromHostname(h), TOPIC_ID_PATTERN);
  });
});

describe('topicsFor', () => {
  test('builds the four topics under <prefix>/<deviceId>', () => {
    assert.deepEqual(topicsFor('site/stagebox', 'left'), {
      base: 'site/stagebox/left',
      status: 'site/stagebox/left/status',
      health: 'site/stagebox/left/health',
      clients: 'site/stagebox/left/clients',
      event: 'site/stagebox/left/event',
    });
  });
});
