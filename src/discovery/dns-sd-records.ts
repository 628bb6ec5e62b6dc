/**
 * What the box announces, as plain data: the service types, the names tried
 * after a conflict, the host name that goes with each, and the stream's TXT
 * record (contract: docs/protocol.md, "Finding the box").
 */

/** DNS-SD service type of the audio stream (`_stagebox._tcp`); the dashboard is `_http._tcp`. */
export const STREAM_SERVICE_TYPE = 'stagebox';
export const HTTP_SERVICE_TYPE = 'http';
/** Names tried before giving up: <name>, <name>-2 … <name>-16. */
export const MAX_NAME_TRIES = 16;

/** What the stream TXT record says about capture; null while the box has no capture format. */
export interface AdvertisedCapture {
  channels: number | null;
  rate: number | null;
}

/** The fixed part of the stream TXT record. */
export interface StreamTxtFields {
  /** Stream protocol version (docs/protocol.md). */
  protocol: number;
  /** The box's device id (mqtt.deviceId or the sanitised host name). */
  deviceId: string;
  /** Path of the dashboard page; null: no dashboard. */
  dashboardPath: string | null;
  /** Software version. */
  version: string;
  /** Audio transports offered ("ws", "udp", "webrtc"); a phone picks one before it connects. Default ["ws"]. */
  transports?: readonly string[];
}

/** The n-th name to try (0: the name itself), cut so it stays within 63 bytes. */
export function candidateName(base: string, n: number): string {
  if (n === 0) return base;
  const suffix = `-${n + 1}`;
  const chars = [...base];
  while (chars.length > 1 && Buffer.byteLength(chars.join('') + suffix, 'utf8') > 63) chars.pop();
  return chars.join('') + suffix;
}

/** The host label for an instance name: lower case, runs of anything but a-z, 0-9 and "-" as "-". */
export function hostLabel(name: string): string {
  const label = name
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 63)
    .replace(/-+$/, '');
  return label === '' ? 'stagebox' : label;
}

/** The SRV target of the n-th candidate: <label>.local, <label>-2.local, … (follows the instance name). */
export function hostFqdn(configuredName: string, n: number): string {
  return `${candidateName(hostLabel(configuredName), n)}.local`;
}

/** Full service instance names: the stream's first, then the dashboard's when there is one. */
export function serviceFqdns(name: string, dashboard: boolean): string[] {
  const out = [`${name}._${STREAM_SERVICE_TYPE}._tcp.local`];
  if (dashboard) out.push(`${name}._${HTTP_SERVICE_TYPE}._tcp.local`);
  return out;
}

/** The stream service's TXT record, keys in the documented order; channels and rate only while capture has a format. */
export function streamTxt(fields: StreamTxtFields, capture: AdvertisedCapture): Record<string, string> {
  const txt: Record<string, string> = { protocol: String(fields.protocol) };
  if (capture.channels !== null) txt.channels = String(capture.channels);
  if (capture.rate !== null) txt.rate = String(capture.rate);
  txt.deviceid = fields.deviceId;
  if (fields.dashboardPath !== null) txt.dashboard = fields.dashboardPath;
  txt.version = fields.version;
  txt.transports = (fields.transports ?? ['ws']).join(',');
  return txt;
}
