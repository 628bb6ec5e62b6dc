/** WebSocket close codes the box uses; docs/protocol.md §4 lists them with their meaning. Portable. */
export const CLOSE = {
  GOING_AWAY: 1001, // service stopping
  UNSUPPORTED_DATA: 1003, // binary frame from a client
  INVALID_PAYLOAD: 1007, // a text frame that is not valid UTF-8 (sent by ws itself)
  MESSAGE_TOO_BIG: 1009, // frame over stream.maxPayloadBytes (sent by ws itself)
  TRY_AGAIN_LATER: 1013, // stream.maxClients reached when the client said hello
  HELLO_TIMEOUT: 4001,
  UNSUPPORTED_PROTOCOL: 4002,
  SEND_STALLED: 4008,
  HEARTBEAT_TIMEOUT: 4009,
  REPLACED: 4010, // the same clientId connected again; the newest wins
  HANDSHAKE_EVICTED: 4013, // no hello yet, and the oldest of too many such connections (stream.maxPendingHandshakes)
  FLOOD: 4029, // far over the control message rate (control-rate-limiter.ts)
} as const;
