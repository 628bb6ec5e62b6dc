import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { listCaptureCards, parseUsbStream, pickUsbCaptureCard } from '../../src/capture/device-probe';
import { createSource } from '../../src/capture/source-factory';
import { configSchema } from '../../src/config/config-schema';
import { ConfigError } from '../../src/config/config-errors';

// /proc/asound cannot hold a USB card on this machine (no kernel modules), so these
// tests build the same files in a temp dir; the parsing is the real code.
const UMC1820_STREAM = `BEHRINGER UMC1820 at usb-0000:01:00.0-1.3, high speed : USB Audio

Playback:
  Status: Stop
  Interface 1
    Altset 1
    Format: S24_3LE
    Channels: 12
    Endpoint: 0x01 (1 OUT) (ASYNC)
    Rates: 44100, 48000, 88200, 96000

Capture:
  Status: Stop
  Interface 2
    Altset 1
    Format: S24_3LE
    Channels: 10
    Endpoint: 0x81 (1 IN) (ASYNC)
    Rates: 44100, 48000, 88200, 96000
  Interface 2
    Altset 2
    Format: S32_LE
    Channels: 18
    Endpoint: 0x81 (1 IN) (ASYNC)
    Rates: 48000
`;

function fakeProc(cards: { index: number; id: string; usb: boolean; stream?: string; capturePcm?: boolean }[]): string {
  const root = mkdtempSync(path.join(tmpdir(), 'stagebox-proc-'));
  for (const c of cards) {
    const dir = path.join(root, `card${c.index}`);
    mkdirSync(dir);
    writeFileSync(path.join(dir, 'id'), `${c.id}\n`);
    if (c.usb) writeFileSync(path.join(dir, 'usbid'), '1397:0503\n');
    if (c.stream) writeFileSync(path.join(dir, 'stream0'), c.stream);
    if (c.capturePcm) mkdirSync(path.join(dir, 'pcm0c'));
  }
  return root;
}

test('parseUsbStream takes the capture altset with the most channels and its format', () => {
  assert.deepEqual(parseUsbStream(UMC1820_STREAM), { channels: 18, formats: ['S32_LE'], rates: [48000] });
});

test('parseUsbStream returns null for a playback-only interface', () => {
  assert.equal(parseUsbStream('X : USB Audio\n\nPlayback:\n  Interface 1\n    Altset 1\n    Format: S16_LE\n    Channels: 2\n'), null);
});

test('pickUsbCaptureCard picks the USB interface with the most capture channels', () => {
  const small = UMC1820_STREAM.replace('Channels: 18', 'Channels: 4').replace('Channels: 10', 'Channels: 2');
  const root = fakeProc([
    { index: 0, id: 'PCH', usb: false, capturePcm: true },
    { index: 1, id: 'Small', usb: true, stream: small },
    { index: 2, id: 'UMC1820', usb: true, stream: UMC1820_STREAM },
  ]);
  const card = pickUsbCaptureCard(root);
  assert.equal(card?.id, 'UMC1820');
  assert.equal(card?.channels, 18);
  assert.equal(card?.pcm, 'hw:CARD=UMC1820,DEV=0');
  assert.equal(listCaptureCards(root).length, 3);
});

test('pickUsbCaptureCard returns null when there is no USB card or no /proc/asound', () => {
  assert.equal(pickUsbCaptureCard(fakeProc([{ index: 0, id: 'PCH', usb: false, capturePcm: true }])), null);
  assert.equal(pickUsbCaptureCard('/nonexistent/asound'), null);
});

test('device "auto" with no USB card falls back to the test signal and says so', () => {
  const cfg = configSchema.parse({}).capture;
  const { source, reason } = createSource(cfg, fakeProc([]));
  assert.equal(source.snapshot().kind, 'test-signal');
  assert.match(reason, /no USB audio interface .* test signal \(32 channels/);
});

test('device "auto" with a USB card captures from it with its channels and format', () => {
  const cfg = configSchema.parse({}).capture;
  const { source, reason } = createSource(cfg, fakeProc([{ index: 2, id: 'UMC1820', usb: true, stream: UMC1820_STREAM }]));
  assert.equal(source.snapshot().kind, 'alsa');
  assert.equal(source.snapshot().device, 'hw:CARD=UMC1820,DEV=0');
  assert.match(reason, /18 channels, S32_LE, 48000 Hz/);
});

test('an explicit non-card device with channels "auto" is a config error naming the key', () => {
  const cfg = configSchema.parse({ capture: { device: 'mypcm' } }).capture;
  assert.throws(() => createSource(cfg, fakeProc([])), (err: unknown) => {
    assert.ok(err instanceof ConfigError);
    assert.match(err.message, /capture\.channels: got "auto"; allowed: a number 1-64 when capture\.device is "mypcm"/);
    return true;
  });
});
