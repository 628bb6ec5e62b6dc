/**
 * The browser's half of audio over a WebRTC data channel (docs/protocol.md §13) for Node clients: `stagebox listen
 * --transport webrtc` and the bench's listeners. werift plays the browser: it offers the one audio channel with
 * host candidates only (no STUN, as on the stage LAN), the library sends the offer over the WebSocket, and every
 * message of the channel goes to the library as one AUDIO datagram.
 */
import os from 'node:os';
import { RTCPeerConnection, type RTCDataChannel } from 'werift';
import type { DataChannelHandlers, WebRtcTransportOptions } from '../client/client-types.js';
import { AUDIO_CHANNEL_INIT, AUDIO_CHANNEL_LABEL } from '../protocol/webrtc.js';

const DCEP_PPID = 50;
const DATA_CHANNEL_OPEN = 0x03;
const PARTIAL_RELIABLE_REXMIT_UNORDERED = 0x81;

/**
 * werift encodes an unordered channel with maxRetransmits as channel type 0x01 (ordered) instead of 0x81
 * (RFC 8832 §5.1), so the box would read an ordered channel and refuse it. Browsers encode it right; this sets the
 * type byte of the queued DATA_CHANNEL_OPEN as a browser would (werift 0.24.4 and 0.25.2; docs/architecture.md).
 */
function openUnorderedChannel(pc: RTCPeerConnection, label: string, init: { ordered?: boolean; maxRetransmits?: number }): RTCDataChannel {
  const channel = pc.createDataChannel(label, init);
  if (init.ordered !== false || init.maxRetransmits === undefined) return channel;
  const queue = (pc.sctpTransport as unknown as { dataChannelQueue?: [RTCDataChannel, number, Buffer][] }).dataChannelQueue;
  if (!Array.isArray(queue)) throw new Error('werift changed: no SCTP dataChannelQueue to correct the channel type in');
  for (const [ch, ppid, data] of queue) {
    if (ch === channel && ppid === DCEP_PPID && data[0] === DATA_CHANNEL_OPEN) data[1] = PARTIAL_RELIABLE_REXMIT_UNORDERED;
  }
  return channel;
}

/**
 * The addresses this peer offers as host candidates: given, or every IPv4 address of this machine (loopback too,
 * for a box on the same machine). werift's own gathering is off because it skips veth and tun interfaces.
 */
function hostAddresses(given: readonly string[] | undefined): string[] {
  if (given && given.length > 0) return [...given];
  const all = Object.values(os.networkInterfaces()).flatMap((list) => list ?? []);
  return [...new Set(all.filter((a) => a.family === 'IPv4').map((a) => a.address))];
}

/** A peer connection and its audio channel, as `init` says (the tests open others to see the box refuse them). */
export async function offerAudioChannel(
  addresses?: readonly string[],
  label: string = AUDIO_CHANNEL_LABEL,
  init: { ordered?: boolean; maxRetransmits?: number } = AUDIO_CHANNEL_INIT,
): Promise<{ pc: RTCPeerConnection; channel: RTCDataChannel; sdp: string }> {
  const host = hostAddresses(addresses);
  // One address given: bind the socket to it too. werift binds 0.0.0.0 otherwise, and the kernel then picks the
  // source address by route, so listeners meant for different links (the bench's) would all leave by one.
  const bindTo = addresses && host.length === 1 ? { iceInterfaceAddresses: { udp4: host[0]! } } : {};
  const pc = new RTCPeerConnection({ iceServers: [], iceUseIpv4: false, iceUseIpv6: false, iceAdditionalHostAddresses: host, ...bindTo });
  const channel = openUnorderedChannel(pc, label, init);
  await pc.setLocalDescription(await pc.createOffer());
  return { pc, channel, sdp: pc.localDescription!.sdp };
}

/**
 * `openChannel` for the client library's `webrtc` option. `localAddresses`: the host candidates to offer (the
 * bench's listeners each use their own link); default every IPv4 address of this machine.
 */
export function weriftDataChannel(localAddresses?: readonly string[]): WebRtcTransportOptions['openChannel'] {
  return (h: DataChannelHandlers) => {
    let pc: RTCPeerConnection | null = null;
    let closed = false;
    const fail = (state: 'failed' | 'closed', reason: string): void => {
      if (closed) return;
      closed = true;
      h.onState(state, reason);
      void pc?.close().catch(() => undefined);
    };
    void (async () => {
      const offered = await offerAudioChannel(localAddresses);
      pc = offered.pc;
      if (closed) {
        await pc.close();
        return;
      }
      offered.channel.onMessage.subscribe((m) => {
        if (typeof m !== 'string') h.onDatagram(new Uint8Array(m.buffer, m.byteOffset, m.byteLength));
      });
      offered.channel.stateChanged.subscribe((s) => {
        if (s === 'open') h.onState('open', 'channel open');
        else if (s === 'closed') fail('closed', 'the data channel closed');
      });
      offered.pc.connectionStateChange.subscribe((s) => {
        if (s === 'failed') fail('failed', 'ICE or DTLS failed');
      });
      await offered.pc.setRemoteDescription({ type: 'answer', sdp: await h.sendOffer(offered.sdp) });
    })().catch((err: Error) => fail('failed', err.message));
    return {
      close: () => {
        closed = true;
        void pc?.close().catch(() => undefined);
      },
    };
  };
}
