import { readFileSync } from 'node:fs';
import os from 'node:os';
import { z } from 'zod';
import { ConfigError } from '../appliance/config-errors';
import { TOPIC_ID_PATTERN, type MqttConfig } from '../appliance/config-schema';

/** The broker login, read from mqtt.credentialsFile. The password never leaves this object except to MQTT.js. */
export interface MqttCredentials {
  username: string;
  password: string;
}

/** TLS files and login, read once at start. */
export interface MqttFiles {
  ca: Buffer | null;
  cert: Buffer | null;
  key: Buffer | null;
  credentials: MqttCredentials | null;
}

/** The four topics of the contract (docs/mqtt.md). */
export interface MqttTopics {
  base: string;
  status: string;
  health: string;
  clients: string;
  event: string;
}

const credentialsSchema = z.object({ username: z.string().min(1).max(256), password: z.string().max(1024) }).strict();

function readConfigFile(key: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new ConfigError(`config: ${key}: got ${JSON.stringify(file)}; allowed: a readable file (${code})`);
  }
}

/**
 * Reads the credentials file: a JSON object {"username", "password"}.
 * Errors name the file and what is wrong with its shape, never its content.
 */
export function readCredentials(file: string): MqttCredentials {
  const text = readConfigFile('mqtt.credentialsFile', file).toString('utf8');
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new ConfigError(`config: mqtt.credentialsFile: ${JSON.stringify(file)} is not valid JSON; allowed: {"username": "...", "password": "..."}`);
  }
  const parsed = credentialsSchema.safeParse(raw);
  if (!parsed.success) {
    const keys = parsed.error.issues.map((i) => (i.code === 'unrecognized_keys' ? `unknown key(s) ${i.keys.join(', ')}` : `${i.path.join('.') || '(root)'}: ${i.message}`));
    throw new ConfigError(
      `config: mqtt.credentialsFile: ${JSON.stringify(file)} has the wrong shape (${keys.join('; ')}); allowed: {"username": a string of 1-256 characters, "password": a string}`,
    );
  }
  return parsed.data;
}

/** Reads every file the MQTT config names; throws ConfigError (exit 2) naming the key and the path. */
export function readMqttFiles(cfg: MqttConfig): MqttFiles {
  return {
    ca: cfg.caFile === null ? null : readConfigFile('mqtt.caFile', cfg.caFile),
    cert: cfg.certFile === null ? null : readConfigFile('mqtt.certFile', cfg.certFile),
    key: cfg.keyFile === null ? null : readConfigFile('mqtt.keyFile', cfg.keyFile),
    credentials: cfg.credentialsFile === null ? null : readCredentials(cfg.credentialsFile),
  };
}

/**
 * A topic-safe device id from a host name: lower case, every run of
 * characters other than a-z, 0-9, "-" and "_" becomes "-", at most 64
 * characters; "stagebox" if nothing is left.
 */
export function deviceIdFromHostname(hostname: string): string {
  const id = hostname
    .toLowerCase()
    .replace(/[^a-z0-9_-]+/g, '-')
    .replace(/^[-_]+/, '')
    .slice(0, 64)
    .replace(/[-_]+$/, '');
  return TOPIC_ID_PATTERN.test(id) ? id : 'stagebox';
}

export function resolveDeviceId(cfg: MqttConfig, hostname: string = os.hostname()): string {
  return cfg.deviceId ?? deviceIdFromHostname(hostname);
}

export function topicsFor(prefix: string, deviceId: string): MqttTopics {
  const base = `${prefix}/${deviceId}`;
  return { base, status: `${base}/status`, health: `${base}/health`, clients: `${base}/clients`, event: `${base}/event` };
}
