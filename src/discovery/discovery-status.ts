export type DiscoveryState = 'off' | 'probing' | 'announced' | 'error' | 'stopped';

/** The discovery part of GET /api/status. */
export interface DiscoveryStatus {
  enabled: boolean;
  state: DiscoveryState;
  /** The instance name wanted (config). */
  configuredName: string | null;
  /** The instance name probed or announced: differs from configuredName after a conflict. */
  name: string | null;
  /** SRV target, e.g. "stagebox.local". */
  host: string | null;
  /** Full service instance names announced, e.g. "stagebox._stagebox._tcp.local". */
  services: string[];
  /** The stream service's TXT record. */
  txt: Record<string, string>;
  /** Names given up because another device held them. */
  renames: number;
  /** Times the records were sent unsolicited (first announcement, TXT or address changes). */
  announcements: number;
  errors: number;
  lastError: string | null;
  /** Next retry after an error, ms from the status time; null when none is due. */
  retryInMs: number | null;
}

/** The status when discovery.enabled is false. */
export function discoveryOffStatus(): DiscoveryStatus {
  return { enabled: false, state: 'off', configuredName: null, name: null, host: null, services: [], txt: {}, renames: 0, announcements: 0, errors: 0, lastError: null, retryInMs: null };
}
