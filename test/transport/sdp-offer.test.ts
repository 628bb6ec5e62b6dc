import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkOffer } from '../../src/transport/sdp-offer';

/** Chromium's data-channel offer as a phone's browser sends it (mDNS host candidate), shortened. */
const PHONE_OFFER = [
  'v=0',
  'o=- 4611731400430051336 2 IN IP4 127.0.0.1',
  's=-',
  't=0 0',
  'a=group:BUNDLE 0',
  'm=application 9 UDP/DTLS/SCTP webrtc-datachannel',
  'c=IN IP4 0.0.0.0',
  'a=candidate:1467250027 1 udp 2122260223 3f9c5e0a-0d8e-4a43-9a6b-2f6f0c1d1e2f.local 54400 typ host generation 0',
  'a=candidate:1467250028 1 udp 2122260222 192.168.1.23 54401 typ host generation 0',
  'a=end-of-candidates',
  'a=ice-ufrag:4ZcD',
  'a=ice-pwd:2/1muCWoOi3uLifh0NuRHlKT',
  'a=fingerprint:sha-256 75:74:5A:A6:A4:E5:52:F4:A7:67:4C:01:C7:EE:91:3F:21:3D:A2:E3:53:7B:6F:30:86:F2:30:AA:65:FB:04:24',
  'a=setup:actpass',
  'a=mid:0',
  'a=sctp-port:5000',
  'a=max-message-size:262144',
].join('\r\n') + '\r\n';

test('mDNS candidates and end-of-candidates are removed and counted; the rest passes unchanged', () => {
  const { sdp, mdnsCandidatesRemoved } = checkOffer(PHONE_OFFER);
  assert.equal(mdnsCandidatesRemoved, 1);
  const expected = PHONE_OFFER.split('\r\n').filter((l) => !l.includes('.local') && l !== 'a=end-of-candidates').join('\r\n');
  assert.equal(sdp, expected);
});

test('an offer with "\\n" line ends is accepted and answered in "\\r\\n"', () => {
  const { sdp } = checkOffer(PHONE_OFFER.replace(/\r\n/g, '\n'));
  assert.ok(sdp.includes('a=setup:actpass\r\na=mid:0\r\n'));
});

test('a setup line missing is named', () => {
  assert.throws(() => checkOffer(PHONE_OFFER.replace('a=setup:actpass\r\n', '')), {
    name: 'WebRtcError',
    code: 'bad-sdp',
    message: 'offer sdp has no "a=setup" line; a data-channel offer needs a=ice-ufrag, a=ice-pwd, a=fingerprint, a=setup',
  });
});

test('a long bad line is quoted shortened', () => {
  assert.throws(() => checkOffer(`v=0\r\n${'x'.repeat(200)}\r\n`), {
    code: 'bad-sdp',
    message: `offer sdp line "${'x'.repeat(80)}…"; allowed: "<letter>=<value>" lines`,
  });
});
