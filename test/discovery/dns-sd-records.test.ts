import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { candidateName, hostFqdn, hostLabel, serviceFqdns, streamTxt } from '../../src/discovery/dns-sd-records';

/** What the box announces, as data (contract: docs/protocol.md, "Finding the box"). */

describe('names tried after a conflict', () => {
  test('<name>, <name>-2, <name>-3 …, cut to stay within 63 bytes without splitting a character', () => {
    assert.deepEqual([0, 1, 2, 15].map((n) => candidateName('stagebox', n)), ['stagebox', 'stagebox-2', 'stagebox-3', 'stagebox-16']);
    const long = 'ü'.repeat(31); // 62 bytes
    const second = candidateName(long, 1);
    assert.equal(second, `${'ü'.repeat(30)}-2`);
    assert.ok(Buffer.byteLength(second) <= 63);
  });

  test('the host label is the name in lower case with anything but a-z, 0-9 and "-" as "-"', () => {
    assert.equal(hostLabel('Stage Left-2'), 'stage-left-2');
    assert.equal(hostLabel('Bühne links'), 'b-hne-links');
    assert.equal(hostLabel('舞台'), 'stagebox');
  });
});

describe('service names and the stream TXT record', () => {
  test('the host follows the candidate: stagebox.local, stagebox-2.local; from the lower-cased label', () => {
    assert.deepEqual([0, 1, 15].map((n) => hostFqdn('stagebox', n)), ['stagebox.local', 'stagebox-2.local', 'stagebox-16.local']);
    assert.equal(hostFqdn('Bühne links', 1), 'b-hne-links-2.local');
  });

  test('the stream service first, the dashboard only when there is one', () => {
    assert.deepEqual(serviceFqdns('stagebox-2', true), ['stagebox-2._stagebox._tcp.local', 'stagebox-2._http._tcp.local']);
    assert.deepEqual(serviceFqdns('stagebox', false), ['stagebox._stagebox._tcp.local']);
  });

  const fields = { protocol: 1, deviceId: 'foh-left', dashboardPath: '/', version: '0.1.0' };

  test('TXT keys in the documented order, every value text', () => {
    const txt = streamTxt(fields, { channels: 32, rate: 48000 });
    assert.deepEqual(Object.entries(txt), [
      ['protocol', '1'],
      ['channels', '32'],
      ['rate', '48000'],
      ['deviceid', 'foh-left'],
      ['dashboard', '/'],
      ['version', '0.1.0'],
      ['transports', 'ws'],
    ]);
    assert.equal(streamTxt({ ...fields, transports: ['ws', 'udp'] }, { channels: 32, rate: 48000 }).transports, 'ws,udp');
  });

  test('channels and rate absent while capture has no format; dashboard absent without one', () => {
    assert.deepEqual(streamTxt({ ...fields, dashboardPath: null }, { channels: null, rate: null }), { protocol: '1', deviceid: 'foh-left', version: '0.1.0', transports: 'ws' });
  });
});
