import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { foreignRecords, tieBreak, txtKey, type HeldRecords } from '../../src/discovery/conflict-rules';
import type { MdnsRecord } from '../../src/discovery/mdns-transport';

/** The conflict rules are pure functions of records; the network tests (mdns-advertiser.test.ts) run them for real. */

const NAMES = ['stagebox._stagebox._tcp.local', 'stagebox._http._tcp.local', 'stagebox.local'];
const OWN = new Set(['10.1.2.3', '127.0.0.1', 'fe80::1']);
const own = () => OWN;

const srv = (port: number, target: string, name = NAMES[0]!): MdnsRecord => ({ name, type: 'SRV', ttl: 120, data: { port, target, priority: 0, weight: 0 } });
const a = (address: string, name = 'stagebox.local'): MdnsRecord => ({ name, type: 'A', ttl: 120, data: address });
const txt = (...items: string[]): MdnsRecord => ({ name: NAMES[0]!, type: 'TXT', ttl: 4500, data: items.map((i) => Buffer.from(i)) });

const held: HeldRecords = {
  streamFqdn: NAMES[0]!,
  port: 5100,
  host: 'stagebox.local',
  txt: txtKey(['protocol=1', 'deviceid=foh']),
  ipv4: '10.1.2.3',
};

describe('foreignRecords: what another device holds for our names', () => {
  test('a record for one of our names from someone else counts, in answers and in additionals', () => {
    const packet = { answers: [srv(80, 'printer.local')], additionals: [a('10.9.9.9')] };
    assert.deepEqual(foreignRecords(packet, NAMES, own), [srv(80, 'printer.local'), a('10.9.9.9')]);
  });

  test('names compare without regard to case', () => {
    assert.equal(foreignRecords({ answers: [srv(80, 'x.local', 'StageBox._STAGEBOX._tcp.local')] }, NAMES, own).length, 1);
  });

  test('records for other names, goodbyes (TTL 0) and address records with our own addresses do not count', () => {
    const packet = {
      answers: [srv(80, 'x.local', 'other._stagebox._tcp.local'), { ...srv(80, 'x.local'), ttl: 0 }, a('10.1.2.3'), { name: 'stagebox.local', type: 'AAAA', ttl: 120, data: 'fe80::1' }],
    };
    assert.deepEqual(foreignRecords(packet, NAMES, own), []);
  });

  test('our own addresses are read only when an address record needs them', () => {
    let reads = 0;
    const counting = () => {
      reads++;
      return OWN;
    };
    foreignRecords({ answers: [srv(80, 'x.local')] }, NAMES, counting);
    assert.equal(reads, 0);
    foreignRecords({ answers: [a('10.9.9.9'), a('10.9.9.8')] }, NAMES, counting);
    assert.equal(reads, 1);
  });

  test('a packet without answers or additionals has nothing foreign', () => {
    assert.deepEqual(foreignRecords({}, NAMES, own), []);
  });
});

describe('tieBreak: who keeps a name both devices announced (RFC 6762 8.2)', () => {
  test('SRV data that sorts before ours: we win (and keep the name)', () => {
    assert.deepEqual(tieBreak(held, [srv(5100, 'aaa.local')]), { result: 'win', about: `SRV ${NAMES[0]}` });
  });

  test('SRV data that sorts after ours: we lose (and rename)', () => {
    assert.deepEqual(tieBreak(held, [srv(5100, 'zzz.local')]), { result: 'lose', about: `SRV ${NAMES[0]}` });
  });

  test('the SRV target compares in lower case, as ours is', () => {
    assert.deepEqual(tieBreak(held, [srv(5100, 'STAGEBOX.local')]), { result: 'same', about: '' });
  });

  test('equal SRV: the stream TXT record decides', () => {
    assert.deepEqual(tieBreak(held, [srv(5100, 'stagebox.local'), txt('protocol=1', 'deviceid=zzz')]), { result: 'lose', about: `TXT ${NAMES[0]}` });
    assert.deepEqual(tieBreak(held, [srv(5100, 'stagebox.local'), txt('protocol=1', 'deviceid=aaa')]), { result: 'win', about: `TXT ${NAMES[0]}` });
  });

  test('a TXT record of another service name is not compared', () => {
    assert.deepEqual(tieBreak(held, [{ ...txt('path=/'), name: NAMES[1]! }]), { result: 'same', about: '' });
  });

  test('equal SRV and TXT: the lowest IPv4 address decides', () => {
    const same = [srv(5100, 'stagebox.local'), txt('deviceid=foh', 'protocol=1')];
    assert.deepEqual(tieBreak(held, [...same, a('10.1.2.9'), a('10.1.2.1')]), { result: 'win', about: 'A stagebox.local' });
    assert.deepEqual(tieBreak(held, [...same, a('10.1.2.4')]), { result: 'lose', about: 'A stagebox.local' });
  });

  test('the first kind of record that differs decides, whatever the later ones say', () => {
    assert.equal(tieBreak(held, [srv(5100, 'aaa.local'), txt('zzz=1'), a('99.0.0.1')]).result, 'win');
  });

  test('the same data everywhere is our own echo (or a twin that shows no difference): no conflict', () => {
    assert.deepEqual(tieBreak(held, [srv(5100, 'stagebox.local'), txt('protocol=1', 'deviceid=foh'), a('10.1.2.3')]), { result: 'same', about: '' });
  });
});
