/**
 * Health events of recording and virtual soundcheck, on the same event
 * topic and dashboard log as the others (docs/mqtt.md, "event").
 */
export type RecordingEvent =
  | { type: 'recording-started'; ts: string; take: string; channels: number; drive: string }
  | { type: 'recording-stopped'; ts: string; take: string; seconds: number; reason: string }
  /** The take ended by itself: drive full, too slow, vanished, failing. Its files are valid up to `seconds`. */
  | { type: 'recording-failed'; ts: string; take: string; seconds: number; reason: string; error: string }
  | { type: 'playback-started'; ts: string; take: string }
  | { type: 'playback-stopped'; ts: string; take: string; reason: string };

export type RecordingEventSink = (e: RecordingEvent) => void;
