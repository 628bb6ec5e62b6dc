/** The stagebox protocol: everything the box and its clients must agree on (docs/protocol.md). Portable. */
export * from './codecs.js';
export * from './close-codes.js';
export * from './client-id.js';
export * from './messages.js';
export * from './packet-header.js';
export * from './datagram.js';
export * from './webrtc.js';
