/** Recording as the health topic, /metrics and Home Assistant see it. */
export interface RecordingHealth {
  /** A take is being recorded. */
  active: boolean;
  take: string | null;
  /** Length of the take so far, s. */
  seconds: number;
  /** Free space on the recording drive (the one in use, or the one a take would use), bytes. */
  freeBytes: number | null;
  /** Recording time left on it at the current rate, s. */
  secondsLeft: number | null;
  /** Failed writes and flushes since the service started. */
  writeErrors: number;
  /** The failure that ended the last take that failed (drive full, vanished...), null if none did. */
  lastError: string | null;
  /** The take virtual soundcheck plays instead of the stage, null while live. */
  playing: string | null;
}

export const RECORDING_IDLE: RecordingHealth = { active: false, take: null, seconds: 0, freeBytes: null, secondsLeft: null, writeErrors: 0, lastError: null, playing: null };
