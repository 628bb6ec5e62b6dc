/**
 * The platform parts the portable client library (src/client/) takes as
 * injections, for Node: the `ws` WebSocket, zlib's raw inflater and libopus
 * through @discordjs/opus.
 */
import dgram from 'node:dgram';
import { isIPv6 } from 'node:net';
import { inflateRawSync } from 'node:zlib';
import WebSocket from 'ws';
import type { CreateDatagramSocket, DatagramSocketLike } from '../client/datagram-link.js';
import type { OpusDecoder } from '../client/packet-decoder.js';
import type { WebSocketConstructor } from '../client/stagebox-client.js';

export function nodeInflateRaw(bytes: Uint8Array): Uint8Array {
  return inflateRawSync(bytes);
}

type NativeOpusClass = typeof import('@discordjs/opus').OpusEncoder;
let nativeClass: NativeOpusClass | null = null;

/**
 * libopus decoder (@discordjs/opus). The binding is loaded on first use, as in
 * src/engine/opus-encoder.ts. It has no packet-loss concealment call (its
 * decode of an empty packet would conceal a whole 120 ms), so none is offered:
 * the jitter buffer conceals a lost frame, and a WAV recording gets silence.
 */
export function createNodeOpusDecoder(rate: number, channels: number): OpusDecoder {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  nativeClass ??= (require('@discordjs/opus') as typeof import('@discordjs/opus')).OpusEncoder;
  const native = new nativeClass(rate, channels);
  return {
    decode(packet: Uint8Array): Float32Array {
      const pcm = native.decode(Buffer.from(packet.buffer, packet.byteOffset, packet.byteLength));
      const n = pcm.length >> 1;
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = pcm.readInt16LE(i * 2) / 32768;
      return out;
    },
  };
}

/** The `ws` client: it offers the browser's onopen/onmessage/binaryType API the library uses. */
export const NodeWebSocket = WebSocket as unknown as WebSocketConstructor;

/**
 * A UDP socket connected to the box's UDP port, for audio over datagrams
 * (docs/protocol.md §12). `localAddress` binds it to one interface (the
 * bench's listeners each use their own link). Send errors (the box away,
 * ICMP unreachable) are counted by the box's silence, not thrown: the
 * library's keepalive and the box's fallback to the WebSocket handle them.
 */
export function nodeDatagramSocket(localAddress?: string): CreateDatagramSocket {
  return (host: string, port: number): DatagramSocketLike => {
    const socket = dgram.createSocket(isIPv6(host) ? 'udp6' : 'udp4');
    socket.on('error', () => undefined);
    if (localAddress) socket.bind({ address: localAddress, port: 0 });
    socket.connect(port, host);
    let connected = false;
    const backlog: Uint8Array[] = [];
    socket.once('connect', () => {
      connected = true;
      for (const b of backlog.splice(0)) socket.send(b);
    });
    const link: DatagramSocketLike = {
      onmessage: null,
      send(bytes: Uint8Array): void {
        if (connected) socket.send(bytes);
        else if (backlog.length < 8) backlog.push(bytes);
      },
      close(): void {
        try {
          socket.close();
        } catch {
          // already closed
        }
      },
    };
    socket.on('message', (msg: Buffer) => link.onmessage?.(new Uint8Array(msg.buffer, msg.byteOffset, msg.byteLength)));
    return link;
  };
}
