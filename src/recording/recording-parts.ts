import type { RecordingConfig } from '../config/config-schema';
import type { CaptureFormat, CaptureSource } from '../capture/capture-source';
import type { PeriodTap } from '../capture/period-ingest';
import { RecordDrives } from './record-drives';
import { Recorder, type RecorderLog } from './recorder';
import { RecordingControl } from './recording-control';
import type { RecordingEventSink } from './recording-events';
import { Soundcheck } from './soundcheck';

/** What recording and virtual soundcheck take from the service: small views, never the controller. */
export interface RecordingPartsDeps {
  cfg: RecordingConfig;
  stateDir: string;
  periodFrames: number;
  /** The capture as it runs now. */
  capture(): { state: string; format: CaptureFormat | null };
  /** The engineer's name for an input (channel metadata). */
  channelName(ch: number): string | undefined;
  /** Puts a take's tap on the period path (null takes it off). */
  setTap(tap: PeriodTap | null): void;
  /** Makes a take the capture, the live one parked; null gives the stage back. */
  swapSource(next: CaptureSource | null): Promise<void>;
  events: RecordingEventSink;
  log: RecorderLog;
}

/** The recording part, the virtual soundcheck part, and the request layer both share (HTTP, WebSocket). */
export function createRecordingParts(d: RecordingPartsDeps): { recorder: Recorder; soundcheck: Soundcheck; control: RecordingControl } {
  let soundcheck: Soundcheck | null = null;
  const recorder = new Recorder({
    cfg: d.cfg,
    drives: new RecordDrives({ dir: d.cfg.dir, drives: d.cfg.drives, stateDir: d.stateDir }),
    capture: d.capture,
    channelName: d.channelName,
    setTap: d.setTap,
    playing: () => soundcheck?.playing ?? null,
    events: d.events,
    log: d.log,
  });
  soundcheck = new Soundcheck({
    takes: recorder.takes,
    periodFrames: d.periodFrames,
    useSource: (src) => d.swapSource(src),
    useLive: () => d.swapSource(null),
    recording: () => recorder.activeId,
    events: d.events,
    log: d.log,
  });
  return { recorder, soundcheck, control: new RecordingControl(recorder, soundcheck) };
}
