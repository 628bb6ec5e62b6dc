import { isIP } from 'node:net';
import { networkInterfaces, type NetworkInterfaceInfo } from 'node:os';

const WILDCARDS = new Set(['0.0.0.0', '::']);

/**
 * The addresses the box offers a browser as ICE host candidates: where the
 * HTTP server listens. A specific address is the one candidate; a wildcard
 * ("0.0.0.0", "::"), or a name, gives every non-loopback address of every
 * interface (IPv4, and for "::" also IPv6 other than link-local, whose scope
 * a browser could not use), in interface order; loopback only when nothing
 * else is up. No STUN or TURN: on a stage LAN the host candidates are the
 * whole story.
 */
export function iceHostAddresses(
  listenHost: string,
  interfaces: NodeJS.Dict<NetworkInterfaceInfo[]> = networkInterfaces(),
): string[] {
  if (isIP(listenHost) !== 0 && !WILDCARDS.has(listenHost)) return [listenHost];
  const withV6 = listenHost === '::';
  const out: string[] = [];
  const loopback: string[] = [];
  for (const name of Object.keys(interfaces).sort()) {
    for (const info of interfaces[name] ?? []) {
      if (info.family === 'IPv6' && (!withV6 || info.address.toLowerCase().startsWith('fe80:'))) continue;
      (info.internal ? loopback : out).push(info.address);
    }
  }
  return out.length > 0 ? out : loopback;
}
