/** The stagebox client library: the protocol's reference implementation (docs/protocol.md). */
export * from './packet-decoder.js';
export * from './jitter-buffer.js';
export * from './typed-emitter.js';
export * from './stagebox-client.js';
export * from './datagram-link.js';
