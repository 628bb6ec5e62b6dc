import type { MqttTopics } from './mqtt-options';

/**
 * Home Assistant MQTT discovery as data: one row per entity, read from the
 * retained health topic. Every entity belongs to one device (the box) and is
 * available while the status topic says "online".
 */
export interface HaEntity {
  /** Entity key: the last level of its discovery topic and the suffix of its unique id. */
  key: string;
  component: 'sensor' | 'binary_sensor';
  name: string;
  /** Jinja template over the health JSON. */
  valueTemplate: string;
  unit?: string;
  deviceClass?: string;
  stateClass?: 'measurement' | 'total_increasing';
  entityCategory?: 'diagnostic';
  icon?: string;
}

export const HA_ENTITIES: readonly HaEntity[] = [
  { key: 'audio_state', component: 'sensor', name: 'Audio', valueTemplate: '{{ value_json.audio.state }}', icon: 'mdi:waveform' },
  { key: 'clients', component: 'sensor', name: 'Clients', valueTemplate: '{{ value_json.clients.count }}', stateClass: 'measurement', icon: 'mdi:cellphone-sound' },
  {
    key: 'max_latency',
    component: 'sensor',
    name: 'Max client latency',
    valueTemplate: '{{ value_json.clients.maxLatencyMs if value_json.clients.maxLatencyMs is not none else 0 }}',
    unit: 'ms',
    deviceClass: 'duration',
    stateClass: 'measurement',
  },
  { key: 'drops', component: 'sensor', name: 'Dropped packets', valueTemplate: '{{ value_json.clients.drops }}', stateClass: 'measurement', icon: 'mdi:package-variant-remove' },
  { key: 'xruns', component: 'sensor', name: 'Capture xruns', valueTemplate: '{{ value_json.audio.xruns }}', stateClass: 'total_increasing', icon: 'mdi:alert-circle-outline' },
  { key: 'channels', component: 'sensor', name: 'Capture channels', valueTemplate: '{{ value_json.audio.channels }}', entityCategory: 'diagnostic', icon: 'mdi:tune-vertical' },
  { key: 'cpu_load', component: 'sensor', name: 'CPU load', valueTemplate: '{{ value_json.cpu.loadPct }}', unit: '%', stateClass: 'measurement', icon: 'mdi:cpu-64-bit' },
  { key: 'cpu_temp', component: 'sensor', name: 'CPU temperature', valueTemplate: '{{ value_json.cpu.tempC }}', unit: '°C', deviceClass: 'temperature', stateClass: 'measurement' },
  { key: 'mem_used', component: 'sensor', name: 'Memory used', valueTemplate: '{{ value_json.mem.usedPct }}', unit: '%', stateClass: 'measurement', icon: 'mdi:memory' },
  {
    key: 'disk_used',
    component: 'sensor',
    name: 'State disk used',
    valueTemplate: '{{ value_json.disk.usedPct if value_json.disk else none }}',
    unit: '%',
    stateClass: 'measurement',
    entityCategory: 'diagnostic',
    icon: 'mdi:harddisk',
  },
  { key: 'uptime', component: 'sensor', name: 'Uptime', valueTemplate: '{{ value_json.uptimeS }}', unit: 's', deviceClass: 'duration', entityCategory: 'diagnostic' },
  {
    key: 'recording',
    component: 'binary_sensor',
    name: 'Recording',
    valueTemplate: "{{ 'ON' if value_json.recording and value_json.recording.active else 'OFF' }}",
    deviceClass: 'running',
    icon: 'mdi:record-rec',
  },
  {
    key: 'recording_time_left',
    component: 'sensor',
    name: 'Recording time left',
    valueTemplate: '{{ value_json.recording.secondsLeft if value_json.recording and value_json.recording.secondsLeft is not none else none }}',
    unit: 's',
    deviceClass: 'duration',
    stateClass: 'measurement',
    icon: 'mdi:timer-sand',
  },
  {
    key: 'under_voltage',
    component: 'binary_sensor',
    name: 'Under-voltage',
    valueTemplate: "{{ 'ON' if value_json.throttle and value_json.throttle.underVoltage else 'OFF' }}",
    deviceClass: 'problem',
    entityCategory: 'diagnostic',
  },
];

export interface DiscoveryMessage {
  topic: string;
  /** The config JSON; "" removes the entity (a retained empty payload). */
  payload: string;
}

function discoveryTopic(prefix: string, e: HaEntity, deviceId: string): string {
  return `${prefix}/${e.component}/${deviceId}/${e.key}/config`;
}

/** Retained discovery configs for every entity of the table. */
export function discoveryConfigs(o: { discoveryPrefix: string; deviceId: string; topics: MqttTopics; version: string }): DiscoveryMessage[] {
  const device = { identifiers: [`stagebox_${o.deviceId}`], name: `stagebox ${o.deviceId}`, manufacturer: 'stagebox', model: 'stage box', sw_version: o.version };
  return HA_ENTITIES.map((e) => {
    const config: Record<string, unknown> = {
      name: e.name,
      unique_id: `stagebox_${o.deviceId}_${e.key}`,
      object_id: `stagebox_${o.deviceId}_${e.key}`,
      state_topic: o.topics.health,
      value_template: e.valueTemplate,
      availability_topic: o.topics.status,
      payload_available: 'online',
      payload_not_available: 'offline',
      device,
    };
    if (e.component === 'binary_sensor') Object.assign(config, { payload_on: 'ON', payload_off: 'OFF' });
    if (e.unit) config.unit_of_measurement = e.unit;
    if (e.deviceClass) config.device_class = e.deviceClass;
    if (e.stateClass) config.state_class = e.stateClass;
    if (e.entityCategory) config.entity_category = e.entityCategory;
    if (e.icon) config.icon = e.icon;
    return { topic: discoveryTopic(o.discoveryPrefix, e, o.deviceId), payload: JSON.stringify(config) };
  });
}

/** Empty retained payloads that remove every entity of the table for this device. */
export function discoveryRemovals(o: { discoveryPrefix: string; deviceId: string }): DiscoveryMessage[] {
  return HA_ENTITIES.map((e) => ({ topic: discoveryTopic(o.discoveryPrefix, e, o.deviceId), payload: '' }));
}
