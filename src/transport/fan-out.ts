import { entryLength, entryOffset, entryOutput, resultCount } from '../engine/encode-result';
import type { OutputRegistry } from '../pool/output-registry';
import { frameInPlace } from './ws-frame';

/**
 * Hands every packet of one encode result to each client that wants it:
 * framed once per packet, in place (the encoder left headroom in front of
 * it), and the same bytes pushed to every subscriber's sink. Never awaits,
 * allocates nothing per client. Bound once, so the send pool calls a plain
 * function per released period.
 */
export class FanOut {
  constructor(private readonly outputs: OutputRegistry) {}

  readonly deliver = (result: ArrayBuffer, arrivalMs: number): void => {
    const view = new DataView(result);
    const count = resultCount(view);
    for (let i = 0; i < count; i++) {
      const out = this.outputs.get(entryOutput(view, i));
      if (!out || out.sinks.size === 0) continue;
      const frame = frameInPlace(result, entryOffset(view, i), entryLength(view, i));
      for (const sink of out.sinks) sink.pushPacket(frame, arrivalMs);
    }
  };
}
