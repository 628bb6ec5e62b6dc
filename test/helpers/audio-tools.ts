import { execFileSync } from 'node:child_process';

/**
 * Reading takes back with tools nobody here wrote: sox (Debian sox) and
 * ffprobe (Debian ffmpeg). Both are in the Makefile's APT_PACKAGES.
 */

export interface SoxInfo {
  channels: number;
  rate: number;
  bits: number;
  samples: number;
  encoding: string;
}

/** `sox --i`, parsed. Throws with sox's own message when it cannot read the file. */
export function soxInfo(file: string): SoxInfo {
  const text = execFileSync('sox', ['--i', file], { encoding: 'utf8', timeout: 20_000, stdio: ['ignore', 'pipe', 'pipe'] });
  const field = (name: string): string => {
    const m = new RegExp(`^${name}\\s*:\\s*(.*)$`, 'm').exec(text);
    if (!m) throw new Error(`sox --i ${file}: no "${name}" in ${JSON.stringify(text)}`);
    return m[1]!.trim();
  };
  return {
    channels: Number(field('Channels')),
    rate: Number(field('Sample Rate')),
    bits: Number(/^(\d+)-bit/.exec(field('Precision'))![1]),
    samples: Number(/= (\d+) samples/.exec(field('Duration'))![1]),
    encoding: field('Sample Encoding'),
  };
}

/** The file's samples as sox decodes them, as signed little-endian integers of the file's own width. */
export function soxSamples(file: string, bits: number): Int32Array {
  const raw = execFileSync('sox', [file, '-t', 'raw', '-e', 'signed-integer', '-b', String(bits), '-L', '-'], { maxBuffer: 1 << 30, timeout: 60_000, stdio: ['ignore', 'pipe', 'pipe'] });
  const bps = bits / 8;
  const out = new Int32Array(Math.floor(raw.length / bps));
  for (let i = 0; i < out.length; i++) out[i] = raw.readIntLE(i * bps, bps);
  return out;
}

export interface ProbeResult {
  format: { format_name: string; duration?: string; tags?: Record<string, string> };
  streams: { codec_name: string; channels: number; sample_rate: string; bits_per_raw_sample?: string; bits_per_sample?: number; duration_ts?: number }[];
  chapters: { start_time: string; tags?: { title?: string } }[];
}

/** `ffprobe` of a file as JSON (format, streams, chapters). */
export function ffprobe(file: string): ProbeResult {
  const text = execFileSync('ffprobe', ['-v', 'error', '-print_format', 'json', '-show_format', '-show_streams', '-show_chapters', file], {
    encoding: 'utf8',
    timeout: 20_000,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return JSON.parse(text) as ProbeResult;
}
