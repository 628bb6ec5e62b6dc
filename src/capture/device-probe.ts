import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { SAMPLE_FORMATS, type SampleFormat } from '../engine/sample-format';

/** A sound card's capture capabilities as /proc/asound reports them. */
export interface CaptureCard {
  index: number;
  id: string;
  name: string;
  usb: boolean;
  /** Most capture channels of any altset. */
  channels: number;
  /** Formats of the altset with the most channels, those stagebox supports first. */
  formats: SampleFormat[];
  rates: number[];
  /** ALSA PCM name that opens the card's first device directly. */
  pcm: string;
}

function read(file: string): string | null {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return null;
  }
}

/** Parses the "Capture:" section of a USB stream file (/proc/asound/cardN/streamM). */
export function parseUsbStream(text: string): { channels: number; formats: string[]; rates: number[] } | null {
  const start = text.search(/^Capture:/m);
  if (start < 0) return null;
  const rest = text.slice(start + 'Capture:'.length);
  const end = rest.search(/^\S/m);
  const section = end < 0 ? rest : rest.slice(0, end);
  let best: { channels: number; formats: string[]; rates: number[] } | null = null;
  for (const alt of section.split(/^\s*Altset\s+\d+/m).slice(1)) {
    const ch = /Channels:\s*(\d+)/.exec(alt);
    const fmt = /Format:\s*(.+)/.exec(alt);
    const rates = /Rates:\s*(.+)/.exec(alt);
    if (!ch) continue;
    const cand = {
      channels: Number(ch[1]),
      formats: fmt ? fmt[1]!.split(/[\s,]+/).filter(Boolean) : [],
      rates: rates ? rates[1]!.split(/[\s,]+/).map(Number).filter((n) => n > 0) : [],
    };
    if (!best || cand.channels > best.channels) best = cand;
  }
  return best;
}

/**
 * Lists cards with capture streams under `root` (default /proc/asound).
 * USB cards report channels through their stream files; others are listed
 * only when they have a capture PCM, with channels unknown (0).
 */
export function listCaptureCards(root = '/proc/asound'): CaptureCard[] {
  const cards: CaptureCard[] = [];
  let entries: string[];
  try {
    entries = readdirSync(root);
  } catch {
    return cards;
  }
  for (const e of entries) {
    const m = /^card(\d+)$/.exec(e);
    if (!m) continue;
    const dir = path.join(root, e);
    const index = Number(m[1]);
    const id = (read(path.join(dir, 'id')) ?? `${index}`).trim();
    const usb = read(path.join(dir, 'usbid')) !== null;
    let best: ReturnType<typeof parseUsbStream> = null;
    for (const f of safeReaddir(dir).filter((n) => /^stream\d+$/.test(n))) {
      const s = parseUsbStream(read(path.join(dir, f)) ?? '');
      if (s && (!best || s.channels > best.channels)) best = s;
    }
    const hasCapturePcm = safeReaddir(dir).some((n) => /^pcm\d+c$/.test(n));
    if (!best && !hasCapturePcm) continue;
    const supported = (best?.formats ?? []).filter((f): f is SampleFormat => (SAMPLE_FORMATS as readonly string[]).includes(f));
    cards.push({
      index,
      id,
      name: id,
      usb,
      channels: best?.channels ?? 0,
      formats: supported,
      rates: best?.rates ?? [],
      pcm: `hw:CARD=${id},DEV=0`,
    });
  }
  return cards.sort((a, b) => a.index - b.index);
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** The USB interface with the most capture channels, or null. */
export function pickUsbCaptureCard(root?: string): CaptureCard | null {
  let best: CaptureCard | null = null;
  for (const c of listCaptureCards(root)) {
    if (c.usb && c.channels > 0 && (!best || c.channels > best.channels)) best = c;
  }
  return best;
}
