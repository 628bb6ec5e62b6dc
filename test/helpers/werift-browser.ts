import { RTCPeerConnection, type RTCDataChannel } from 'werift';
import { AUDIO_CHANNEL_INIT, AUDIO_CHANNEL_LABEL } from '../../src/protocol/webrtc';

const DCEP_PPID = 50;
const DATA_CHANNEL_OPEN = 0x03;

/**
 * werift encodes an unordered channel with maxRetransmits as channel type 0x01
 * (ordered) instead of 0x81 (RFC 8832 §5.1: PARTIAL_RELIABLE_REXMIT_UNORDERED),
 * so the box would read an ordered channel. Browsers encode it right; this
 * sets the type byte of the queued DATA_CHANNEL_OPEN as a browser would. The
 * box never sends one (the browser opens the channel), so src/ needs no fix.
 */
function fixChannelType(pc: RTCPeerConnection, channel: RTCDataChannel, init: { ordered?: boolean; maxRetransmits?: number }): void {
  if (init.ordered !== false || init.maxRetransmits === undefined) return;
  const queue = (pc.sctpTransport as unknown as { dataChannelQueue: [RTCDataChannel, number, Buffer][] }).dataChannelQueue;
  for (const [ch, ppid, data] of queue) {
    if (ch === channel && ppid === DCEP_PPID && data[0] === DATA_CHANNEL_OPEN) data[1] = 0x81;
  }
}

/**
 * The browser's half played by werift, for tests that need a real peer but
 * no Chromium: offers one data channel (the audio channel unless told
 * otherwise) with its loopback host candidate, applies the box's answer and
 * records every message.
 */
export class WeriftBrowser {
  /** False: count messages only (a benchmark's receivers), keep none. */
  static keepMessages = true;
  readonly received: Buffer[] = [];
  messages = 0;
  bytes = 0;
  readonly channel: RTCDataChannel;
  private constructor(readonly pc: RTCPeerConnection, label: string, init: { ordered?: boolean; maxRetransmits?: number }) {
    this.channel = pc.createDataChannel(label, init);
    fixChannelType(pc, this.channel, init);
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
    const pc = new RTCPeerConnection({ iceServers: [], iceUseIpv4: false, iceUseIpv6: false, iceAdditionalHostAddresses: ['127.0.0.1'] });
    const browser = new WeriftBrowser(pc, label, init);
    await pc.setLocalDescription(await pc.createOffer());
    return { browser, sdp: pc.localDescription!.sdp };
  }

  accept(answerSdp: string): Promise<void> {
    return this.pc.setRemoteDescription({ type: 'answer', sdp: answerSdp });
  }

  close(): Promise<void> {
    return this.pc.close().catch(() => undefined);
  }
}
