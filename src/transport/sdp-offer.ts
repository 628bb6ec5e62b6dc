import { MAX_OFFER_SDP_CHARS } from '../protocol/webrtc';
import { WebRtcError } from './webrtc-error';

/** An offer the box will hand to the WebRTC stack, and what was taken out of it. */
export interface CheckedOffer {
  sdp: string;
  /** mDNS (`<uuid>.local`) host candidates removed: the browser is found from its connectivity checks instead. */
  mdnsCandidatesRemoved: number;
}

const DATA_CHANNEL_MEDIA = /^m=application \d{1,5} (UDP\/DTLS\/SCTP|DTLS\/SCTP) webrtc-datachannel$/;
const REQUIRED = ['a=ice-ufrag:', 'a=ice-pwd:', 'a=fingerprint:', 'a=setup:'] as const;

function bad(message: string): WebRtcError {
  return new WebRtcError('bad-sdp', message);
}

function quote(line: string): string {
  return JSON.stringify(line.length > 80 ? `${line.slice(0, 80)}…` : line);
}

/**
 * Checks a browser's offer at the edge: a string of SDP lines with exactly
 * one data-channel media section (no audio or video: the box answers data
 * channels only) and the ICE and DTLS attributes a connection needs. Throws
 * {@link WebRtcError} `bad-sdp` naming the line and what is allowed.
 *
 * mDNS host candidates (what Chromium shows a page without camera or
 * microphone permission instead of its addresses) are removed: resolving
 * them would open a multicast DNS socket per peer and can take seconds,
 * while the browser's checks to the box's own candidates reveal its address
 * anyway (a peer-reflexive candidate, RFC 8445 §7.3.1.3). For the same
 * reason `a=end-of-candidates` is removed.
 */
export function checkOffer(sdp: unknown): CheckedOffer {
  if (typeof sdp !== 'string') throw bad(`offer sdp is ${sdp === null ? 'null' : typeof sdp}; allowed: a string of SDP`);
  if (sdp.length === 0 || sdp.length > MAX_OFFER_SDP_CHARS) {
    throw bad(`offer sdp is ${sdp.length} characters; allowed: 1-${MAX_OFFER_SDP_CHARS}`);
  }
  const lines = sdp.split(/\r?\n/);
  if (lines[lines.length - 1] === '') lines.pop();
  if (lines[0] !== 'v=0') throw bad(`offer sdp starts with ${quote(lines[0]!)}; allowed: "v=0"`);
  const kept: string[] = [];
  let media = 0;
  let mdnsCandidatesRemoved = 0;
  const seen = new Set<string>();
  for (const line of lines) {
    if (!/^[a-z]=/.test(line)) throw bad(`offer sdp line ${quote(line)}; allowed: "<letter>=<value>" lines`);
    if (line.startsWith('m=')) {
      if (!DATA_CHANNEL_MEDIA.test(line)) {
        throw bad(`offer sdp media ${quote(line)}; allowed: one "m=application <port> UDP/DTLS/SCTP webrtc-datachannel" (data channels only)`);
      }
      if (++media > 1) throw bad(`offer sdp has more than one media section; allowed: exactly one (data channels)`);
    }
    if (line.startsWith('a=candidate:') && / [0-9a-f-]+\.local /i.test(line)) {
      mdnsCandidatesRemoved++;
      continue;
    }
    // With its candidates gone (or none given), "no more candidates" would let
    // the box's ICE fail at once instead of waiting for the browser's checks.
    if (line === 'a=end-of-candidates') continue;
    for (const prefix of REQUIRED) if (line.startsWith(prefix)) seen.add(prefix);
    kept.push(line);
  }
  if (media === 0) throw bad('offer sdp has no media section; allowed: one "m=application <port> UDP/DTLS/SCTP webrtc-datachannel"');
  for (const prefix of REQUIRED) {
    if (!seen.has(prefix)) throw bad(`offer sdp has no "${prefix.slice(0, -1)}" line; a data-channel offer needs ${REQUIRED.map((p) => p.slice(0, -1)).join(', ')}`);
  }
  return { sdp: `${kept.join('\r\n')}\r\n`, mdnsCandidatesRemoved };
}
