// The browser half of audio over a WebRTC data channel (docs/protocol.md, "Audio over a WebRTC data channel"):
// this page offers, the box answers, and the box's AUDIO datagrams arrive on an unordered channel that never
// retransmits. RTCPeerConnection works on plain http:// (no secure context needed). Signalling goes through the
// caller (sendOffer: over the page's WebSocket); each datagram's bytes go to onDatagram, which parses them with
// the protocol module (parseBoxDatagram). Not wired into listen.js here: the page decides when to prefer it.
import { AUDIO_CHANNEL_INIT, AUDIO_CHANNEL_LABEL } from './protocol/webrtc.js';

/** How long to wait for this browser's own candidates before offering, ms. Host candidates take a few ms on a LAN. */
const GATHER_WAIT_MS = 500;

/** True where this browser can receive audio over a data channel. */
export function dataChannelSupported() {
  return typeof RTCPeerConnection === 'function';
}

/**
 * One peer connection to the box. States: 'idle' → 'connecting' → 'open' → 'closed', or 'failed' (the offer was
 * refused, ICE or DTLS failed, or the channel closed); onState is told each change with a reason.
 */
export class DataChannelAudio {
  /**
   * @param {{ sendOffer: (sdp: string) => Promise<string>,
   *           onDatagram: (bytes: Uint8Array) => void,
   *           onState?: (state: string, reason: string) => void }} handlers
   *   sendOffer delivers the offer's SDP to the box and resolves with its answer's SDP (rejects with the box's error).
   */
  constructor(handlers) {
    this.handlers = handlers;
    this.state = 'idle';
    this.pc = null;
    this.channel = null;
    /** Datagrams and bytes received. */
    this.messages = 0;
    this.bytes = 0;
  }

  /** Offers, applies the answer; resolves once the answer is applied (the channel opens a little later: onState). */
  async start() {
    if (this.state !== 'idle') throw new Error(`DataChannelAudio.start() in state ${this.state}; allowed: idle`);
    this.setState('connecting', 'offer');
    try {
      // No STUN or TURN: the box and the phone are on one LAN.
      const pc = new RTCPeerConnection({ iceServers: [] });
      this.pc = pc;
      const channel = pc.createDataChannel(AUDIO_CHANNEL_LABEL, { ...AUDIO_CHANNEL_INIT });
      channel.binaryType = 'arraybuffer';
      this.channel = channel;
      channel.onopen = () => this.setState('open', 'channel open');
      channel.onclose = () => this.fail('channel closed');
      channel.onmessage = (event) => {
        if (typeof event.data === 'string') return;
        const bytes = new Uint8Array(event.data);
        this.messages++;
        this.bytes += bytes.length;
        this.handlers.onDatagram(bytes);
      };
      pc.onconnectionstatechange = () => {
        if (pc.connectionState === 'failed') this.fail('connection failed');
      };
      await pc.setLocalDescription(await pc.createOffer());
      await gathered(pc, GATHER_WAIT_MS);
      const answer = await this.handlers.sendOffer(pc.localDescription.sdp);
      if (this.state === 'closed') return;
      await pc.setRemoteDescription({ type: 'answer', sdp: answer });
    } catch (err) {
      this.fail(err && err.message ? err.message : String(err));
      throw err;
    }
  }

  /** Ends the connection (the box sees the channel close and sends over the WebSocket again). */
  close() {
    if (this.state === 'closed') return;
    this.setState('closed', 'closed by the page');
    this.teardown();
  }

  fail(reason) {
    if (this.state === 'closed' || this.state === 'failed') return;
    this.setState('failed', reason);
    this.teardown();
  }

  teardown() {
    if (this.channel) this.channel.onclose = null;
    if (this.pc) this.pc.close();
  }

  setState(state, reason) {
    this.state = state;
    if (this.handlers.onState) this.handlers.onState(state, reason);
  }
}

function gathered(pc, ms) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      pc.removeEventListener('icegatheringstatechange', check);
      resolve();
    }
    function check() {
      if (pc.iceGatheringState === 'complete') done();
    }
    pc.addEventListener('icegatheringstatechange', check);
  });
}
