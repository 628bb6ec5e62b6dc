import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import type { MqttConfig } from '../config/config-schema';
import type { HealthSnapshot, ClientSummary } from './health-snapshot';
import type { HealthEvent } from './health-watcher';
import { discoveryConfigs, discoveryRemovals } from './ha-discovery';
import type { MqttFiles, MqttTopics } from './mqtt-options';
import type { Logger } from '../logging/logger';


export interface MqttReporterOptions {
  /** Broker URL (mqtt.url, or the embedded broker's). Holds no credentials (the schema refuses them). */
  url: string;
  cfg: MqttConfig;
  files: MqttFiles;
  deviceId: string;
  clientId: string;
  topics: MqttTopics;
  version: string;
  /** The current health snapshot (cheap: built from cached figures). */
  snapshot: () => HealthSnapshot;
  /** The current client list. */
  clients: () => ClientSummary[];
  log: Logger;
}

/** Public view for /api/status. */
export interface MqttReporterStatus {
  url: string;
  deviceId: string;
  topic: string;
  connected: boolean;
  /** Successful connections since start (1 = never lost). */
  connects: number;
  /** Failed or lost connections since start. */
  failures: number;
  lastError: string | null;
  /** Messages not sent because the broker was away (nothing is queued). */
  dropped: number;
}

/** MQTT 3.1.1 and 5 CONNACK codes that mean the login was refused. */
const AUTH_REFUSED = new Set([4, 5, 134, 135]);
/** A graceful stop waits this long for the broker to take "offline", then this long for the disconnect, ms. */
const OFFLINE_WAIT_MS = 600;
const END_WAIT_MS = 300;

function bounded(p: Promise<unknown>, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    t.unref();
    void p.then(
      () => {
        clearTimeout(t);
        resolve();
      },
      () => {
        clearTimeout(t);
        resolve();
      },
    );
  });
}

/**
 * Publishes the box's health to one broker under one base topic
 * (docs/mqtt.md): retained status (also the last will), retained health every
 * healthIntervalS, the retained client list on change, events, and Home
 * Assistant discovery.
 *
 * A broker that is slow, away or refusing cannot reach the audio path:
 * MQTT.js works on the event loop asynchronously, nothing here awaits a
 * publish on behalf of anyone else, and nothing is queued while the broker is
 * away (publishes then are dropped and counted; health and the client list are
 * snapshots and are sent again on reconnect). Reconnects back off from
 * reconnectInitialMs doubling to reconnectMaxMs.
 */
export class MqttReporter {
  private client: MqttClient | null = null;
  private healthTimer: NodeJS.Timeout | null = null;
  private clientsTimer: NodeJS.Timeout | null = null;
  private reconnectTimer: NodeJS.Timeout | null = null;
  private lastClientsAt = 0;
  private delayMs: number;
  private stopping = false;
  private everConnected = false;
  private attempts = 0;
  private readonly st: { connects: number; failures: number; lastError: string | null; dropped: number } = { connects: 0, failures: 0, lastError: null, dropped: 0 };

  constructor(private readonly opts: MqttReporterOptions) {
    this.delayMs = opts.cfg.reconnectInitialMs;
  }

  start(): void {
    const o = this.opts;
    const options: IClientOptions = {
      clientId: o.clientId,
      clean: true,
      keepalive: 30,
      connectTimeout: 10_000,
      // Reconnects are ours (backoff); MQTT.js's own retry runs at a fixed period.
      reconnectPeriod: 0,
      // Nothing waits for a broker that is away: health is a snapshot, sent again on connect.
      queueQoSZero: false,
      resubscribe: false,
      will: { topic: o.topics.status, payload: Buffer.from('offline'), qos: 1, retain: true },
    };
    if (o.files.credentials) {
      options.username = o.files.credentials.username;
      options.password = o.files.credentials.password;
    }
    if (o.files.ca) options.ca = o.files.ca;
    if (o.files.cert) options.cert = o.files.cert;
    if (o.files.key) options.key = o.files.key;
    o.log.info(
      { url: o.url, clientId: o.clientId, deviceId: o.deviceId, topic: o.topics.base, login: o.files.credentials ? o.files.credentials.username : null, tls: o.files.ca !== null || o.files.cert !== null },
      'MQTT: connecting',
    );
    const client = mqtt.connect(o.url, options);
    this.client = client;
    client.on('connect', () => this.onConnect());
    client.on('close', () => this.onClose());
    client.on('error', (err: Error & { code?: number | string }) => this.onError(err));
    // We subscribe to nothing; anything the broker sends anyway is ignored.
    client.on('message', () => undefined);
    this.healthTimer = setInterval(() => this.publishHealth(), o.cfg.healthIntervalS * 1000);
    this.healthTimer.unref();
  }

  status(): MqttReporterStatus {
    return { url: this.opts.url, deviceId: this.opts.deviceId, topic: this.opts.topics.base, connected: this.client?.connected ?? false, ...this.st };
  }

  /** Sends an event now if connected; otherwise drops it (counted). */
  publishEvent(e: HealthEvent): void {
    this.publish(this.opts.topics.event, JSON.stringify(e), false, 0);
  }

  /** The client list changed: publish it, at most once per clientsMinIntervalMs (the latest list wins). */
  clientsChanged(): void {
    if (this.clientsTimer) return;
    const wait = this.lastClientsAt + this.opts.cfg.clientsMinIntervalMs - Date.now();
    if (wait <= 0) {
      this.publishClients();
      return;
    }
    this.clientsTimer = setTimeout(() => {
      this.clientsTimer = null;
      this.publishClients();
    }, wait);
    this.clientsTimer.unref();
  }

  /** Publishes "offline" (bounded wait) and disconnects. */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const t of [this.healthTimer, this.clientsTimer, this.reconnectTimer]) if (t) clearTimeout(t);
    this.healthTimer = this.clientsTimer = this.reconnectTimer = null;
    const c = this.client;
    if (!c) return;
    if (c.connected) {
      await bounded(
        new Promise<void>((resolve) => c.publish(this.opts.topics.status, 'offline', { qos: 1, retain: true }, () => resolve())),
        OFFLINE_WAIT_MS,
      );
      await bounded(c.endAsync(false), END_WAIT_MS);
    }
    c.end(true);
  }

  private onConnect(): void {
    const o = this.opts;
    this.st.connects++;
    this.attempts = 0;
    this.delayMs = o.cfg.reconnectInitialMs;
    this.st.lastError = null;
    o.log.info({ url: o.url, topic: o.topics.base, reconnect: this.everConnected }, this.everConnected ? 'MQTT: reconnected; publishing the current state' : 'MQTT: connected');
    this.everConnected = true;
    this.publish(o.topics.status, 'online', true, 1);
    const ha = o.cfg.homeAssistant;
    const discovery = ha.enabled
      ? discoveryConfigs({ discoveryPrefix: ha.discoveryPrefix, deviceId: o.deviceId, topics: o.topics, version: o.version })
      : discoveryRemovals({ discoveryPrefix: ha.discoveryPrefix, deviceId: o.deviceId });
    for (const m of discovery) this.publish(m.topic, m.payload, true, 1);
    this.publishHealth();
    this.publishClients();
  }

  private onError(err: Error & { code?: number | string }): void {
    const o = this.opts;
    this.st.lastError = err.message;
    if (typeof err.code === 'number' && AUTH_REFUSED.has(err.code)) {
      o.log.error(
        { url: o.url, login: o.files.credentials ? o.files.credentials.username : null, code: err.code, err: err.message },
        `MQTT: the broker refused the login (${o.files.credentials ? `user "${o.files.credentials.username}" from mqtt.credentialsFile` : 'no mqtt.credentialsFile set'}); check the user name and password`,
      );
    } else {
      o.log.debug({ url: o.url, err: err.message }, 'MQTT: error');
    }
  }

  private onClose(): void {
    if (this.stopping) return;
    const o = this.opts;
    this.st.failures++;
    this.attempts++;
    const delay = this.delayMs;
    this.delayMs = Math.min(this.delayMs * 2, o.cfg.reconnectMaxMs);
    o.log.warn(
      { url: o.url, attempt: this.attempts, retryInMs: delay, err: this.st.lastError },
      this.attempts === 1 && this.everConnected ? 'MQTT: broker connection lost; reconnecting' : 'MQTT: broker unreachable; retrying',
    );
    if (this.reconnectTimer) return;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      if (!this.stopping) this.client?.reconnect();
    }, delay);
    this.reconnectTimer.unref();
  }

  private publishHealth(): void {
    if (!this.client?.connected) return;
    this.publish(this.opts.topics.health, JSON.stringify(this.opts.snapshot()), true, 0);
  }

  private publishClients(): void {
    this.lastClientsAt = Date.now();
    if (!this.client?.connected) return;
    this.publish(this.opts.topics.clients, JSON.stringify(this.opts.clients()), true, 0);
  }

  private publish(topic: string, payload: string, retain: boolean, qos: 0 | 1): void {
    const c = this.client;
    if (!c || !c.connected) {
      this.st.dropped++;
      return;
    }
    c.publish(topic, payload, { qos, retain }, (err) => {
      if (err) this.opts.log.debug({ topic, err: err.message }, 'MQTT: publish failed');
    });
  }
}
