import type { CaptureStatus } from '../capture/capture-source';
import type { Config } from '../config/config-schema';
import type { Logger } from '../logging/logger';
import { EmbeddedBroker } from './embedded-broker';
import type { EventLog, ServiceEvent } from './event-log';
import { buildHealthSnapshot, type HealthSnapshot, type ServiceFigures } from './health-snapshot';
import { HealthWatcher, type HealthEvent } from './health-watcher';
import { resolveDeviceId, topicsFor, type MqttFiles } from './mqtt-options';
import { MqttReporter } from './mqtt-reporter';
import { SystemCollector, type SystemSample } from './system-collector';

const NO_SAMPLE: SystemSample = { sampledAt: null, cpu: null, mem: null, disk: null, net: null, throttle: null, skippedCalls: 0, failedCalls: 0 };

/**
 * Health as one part of the service: the system collector, the watcher that
 * turns changes into events, and the MQTT reporter (with the embedded broker
 * when no mqtt.url is set). All of it runs on timers off the audio path; a
 * broker problem is logged, never fatal. The collector runs whether or not
 * MQTT is on: /api/status and the dashboard read its samples too.
 */
export class HealthReporting {
  readonly name = 'health';
  readonly collector: SystemCollector;
  readonly watcher: HealthWatcher;
  private broker: EmbeddedBroker | null = null;
  private reporterRef: MqttReporter | null = null;

  /**
   * @param mqttFiles the TLS and password files named by the config, read at start-up (null: MQTT off)
   * @param figures the service's own counters and snapshots
   */
  constructor(
    private readonly config: Config,
    private readonly mqttFiles: MqttFiles | null,
    private readonly figures: () => ServiceFigures,
    private readonly events: EventLog,
    private readonly version: string,
    private readonly log: Logger,
  ) {
    this.collector = new SystemCollector({ intervalS: config.health.systemIntervalS, stateDir: config.state.dir, log });
    this.watcher = new HealthWatcher({ figures, system: () => this.collector.latest(), overloadCpuPct: config.health.overloadCpuPct });
  }

  get reporter(): MqttReporter | null {
    return this.reporterRef;
  }

  async start(): Promise<void> {
    this.collector.start();
    this.watcher.captureChanged(this.figures().capture);
    if (this.mqttFiles) await this.startMqtt(this.mqttFiles);
    else this.log.info({}, 'MQTT off (mqtt.enabled false)');
    // One detector of device, client and overload changes feeds both the MQTT event topic and the dashboard's event log.
    this.watcher.on('event', (e: HealthEvent) => this.report(e));
    this.watcher.on('clients', () => this.reporterRef?.clientsChanged());
    this.watcher.start();
  }

  /** MQTT first ("offline" goes out while everything else still stands), then the watcher, the collector, the broker. */
  async stop(): Promise<void> {
    await this.reporterRef?.stop();
    this.watcher.stop();
    this.collector.stop();
    await this.broker?.stop();
  }

  /** An event (the watcher's, or recording's): logged, in the event log, and on the MQTT event topic. */
  report(e: HealthEvent): void {
    this.log.info({ event: e }, `health event: ${e.type}`);
    this.events.add(e.type, eventFields(e));
    this.reporterRef?.publishEvent(e);
  }

  /** The capture source changed state: the watcher reports device lost/found without waiting for its next look. */
  captureChanged(s: CaptureStatus): void {
    this.watcher.captureChanged(s);
  }

  /** The health snapshot (MQTT health topic; for /api/status, /healthz and /metrics too). Never waits on a system call. */
  snapshot(): HealthSnapshot {
    return buildHealthSnapshot(this.collector.latest() ?? NO_SAMPLE, this.figures());
  }

  private async startMqtt(files: MqttFiles): Promise<void> {
    const m = this.config.mqtt;
    let url = m.url;
    if (url === null) {
      if (!m.embeddedBroker.enabled) {
        this.log.info({}, 'MQTT: no mqtt.url and the embedded broker is off (mqtt.embeddedBroker.enabled false): health is not published');
        return;
      }
      const broker = new EmbeddedBroker({ host: m.embeddedBroker.host, port: m.embeddedBroker.port, log: this.log });
      if (!(await broker.start())) return;
      this.broker = broker;
      url = broker.localUrl;
    }
    const deviceId = resolveDeviceId(m);
    this.reporterRef = new MqttReporter({
      url,
      cfg: m,
      files,
      deviceId,
      clientId: m.clientId ?? `stagebox-${deviceId}`,
      topics: topicsFor(m.topicPrefix, deviceId),
      version: this.version,
      snapshot: () => this.snapshot(),
      clients: () => this.watcher.clients(),
      log: this.log,
    });
    this.reporterRef.start();
  }
}

/** A health event as flat event-log fields: without its type and time (the log has its own), lists joined. */
function eventFields(e: HealthEvent): ServiceEvent['fields'] {
  const fields: ServiceEvent['fields'] = {};
  for (const [k, v] of Object.entries(e)) {
    if (k === 'type' || k === 'ts') continue;
    fields[k] = Array.isArray(v) ? v.join('; ') : (v as string | number | null);
  }
  return fields;
}
