import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** /proc/asound/cardN/stream0 of an 8-channel USB interface, as the kernel's snd-usb-audio writes it. */
export const FAKE_USB_STREAM = `Fake USB Interface at usb-0000:01:00.0-1, high speed : USB Audio

Capture:
  Status: Stop
  Interface 2
    Altset 1
    Format: S32_LE
    Channels: 8
    Endpoint: 0x81 (1 IN) (ASYNC)
    Rates: 48000
`;

/**
 * "Plugs" a USB interface into a fake /proc/asound (the service reads the one
 * named by STAGEBOX_PROC_ASOUND) as card 1. Its PCM does not exist in alsa-lib,
 * so opening it fails: the probe sees a card, capture retries it.
 */
export function plugFakeUsbCard(root: string): void {
  const dir = path.join(root, 'card1');
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'id'), 'FakeUSB\n');
  writeFileSync(path.join(dir, 'usbid'), '1397:0503\n');
  writeFileSync(path.join(dir, 'stream0'), FAKE_USB_STREAM);
}

export function unplugFakeUsbCard(root: string): void {
  rmSync(path.join(root, 'card1'), { recursive: true });
}
