import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { NetworkInterfaceInfo } from 'node:os';
import { iceHostAddresses } from '../../src/transport/ice-host-addresses';

function v4(address: string, internal = false): NetworkInterfaceInfo {
  return { address, netmask: '255.255.255.0', family: 'IPv4', mac: '00:00:00:00:00:00', internal, cidr: null };
}
function v6(address: string, internal = false): NetworkInterfaceInfo {
  return { address, netmask: 'ffff:ffff:ffff:ffff::', family: 'IPv6', mac: '00:00:00:00:00:00', internal, cidr: null, scopeid: 0 };
}

/** A box on wired and Wi-Fi, with a veth (werift's own gathering would skip it). */
const BOX = {
  lo: [v4('127.0.0.1', true), v6('::1', true)],
  wlan0: [v4('10.0.0.2'), v6('fe80::2'), v6('fd00::2')],
  eth0: [v4('192.168.1.10'), v6('fe80::1')],
  veth0: [v4('10.200.0.1')],
};

test('a server on one address offers that address only', () => {
  assert.deepEqual(iceHostAddresses('192.168.1.10', BOX), ['192.168.1.10']);
  assert.deepEqual(iceHostAddresses('127.0.0.1', BOX), ['127.0.0.1']);
});

test('0.0.0.0 offers every IPv4 address but loopback, veth included, by interface name', () => {
  assert.deepEqual(iceHostAddresses('0.0.0.0', BOX), ['192.168.1.10', '10.200.0.1', '10.0.0.2']);
});

test(':: adds IPv6 addresses other than link-local', () => {
  assert.deepEqual(iceHostAddresses('::', BOX), ['192.168.1.10', '10.200.0.1', '10.0.0.2', 'fd00::2']);
});

test('with nothing but loopback up, loopback is offered', () => {
  assert.deepEqual(iceHostAddresses('0.0.0.0', { lo: BOX.lo }), ['127.0.0.1']);
});
