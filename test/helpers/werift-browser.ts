import type { RTCPeerConnection, RTCDataChannel } from 'werift';
import { AUDIO_CHANNEL_INIT, AUDIO_CHANNEL_LABEL } from '../../src/protocol/webrtc';
import { offerAudioChannel } from '../../src/listen/werift-data-channel';

/**
 * The browser's half played by werift, for tests that need a real peer but
 * no Chromium: offers one data channel (the audio channel unless told
 * otherwise) with its loopback host candidate, applies the box's answer and
 * records every message. The offer is `stagebox listen --transport webrtc`'s
 * (src/listen/werift-data-channel.ts), which also corrects werift's channel
 * type for an unordered channel.
 */
export class WeriftBrowser {
  /** False: count messages only (a benchmark's receivers), keep none. */
  static keepMessages = true;
  readonly received: Buffer[] = [];
  messages = 0;
  bytes = 0;
  private constructor(
    readonly pc: RTCPeerConnection,
    readonly channel: RTCDataChannel,
  ) {
    this.channel.onMessage.subscribe((m) => {
      if (typeof m === 'string') return;
      this.messages++;
      this.bytes += m.length;
      if (WeriftBrowser.keepMessages) this.received.push(Buffer.from(m));
    });
  }

  /** A peer and its offer SDP. */
  static async offer(
    label: string = AUDIO_CHANNEL_LABEL,
    init: { ordered?: boolean; maxRetransmits?: number } = AUDIO_CHANNEL_INIT,
  ): Promise<{ browser: WeriftBrowser; sdp: string }> {
    const { pc, channel, sdp } = await offerAudioChannel(['127.0.0.1'], label, init);
    return { browser: new WeriftBrowser(pc, channel), sdp };
  }

  accept(answerSdp: string): Promise<void> {
    return this.pc.setRemoteDescription({ type: 'answer', sdp: answerSdp });
  }

  close(): Promise<void> {
    return this.pc.close().catch(() => undefined);
  }
}
