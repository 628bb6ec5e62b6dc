import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { z } from 'zod';
import { ConfigError } from '../config/config-errors';
import { TOPIC_ID_PATTERN, type MqttConfig } from '../config/config-schema';

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

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/**
 * Parses every certificate in a PEM file so a wrong or damaged file stops the
 * service at load (exit 2) instead of failing each TLS handshake later.
 * Messages name the key and the path, never the content.
 */
function parseCertificates(key: string, file: string, pem: Buffer): X509Certificate[] {
  const blocks = pem.toString('latin1').match(PEM_CERT) ?? [];
  if (blocks.length === 0) {
    throw new ConfigError(`config: ${key}: ${JSON.stringify(file)} holds no PEM certificate; allowed: a file with one or more "-----BEGIN CERTIFICATE-----" blocks`);
  }
  return blocks.map((block, i) => {
    try {
      return new X509Certificate(block);
    } catch (err) {
      throw new ConfigError(`config: ${key}: ${JSON.stringify(file)}: certificate ${i + 1} of ${blocks.length} does not parse (${(err as Error).message}); allowed: PEM X.509 certificates`);
    }
  });
}

function parsePrivateKey(file: string, pem: Buffer): KeyObject {
  try {
    return createPrivateKey(pem);
  } catch (err) {
    throw new ConfigError(`config: mqtt.keyFile: ${JSON.stringify(file)} is not a usable private key (${(err as Error).message}); allowed: an unencrypted PEM private key`);
  }
}

/** Reads every file the MQTT config names and checks the TLS ones; throws ConfigError (exit 2) naming the key and the path. */
export function readMqttFiles(cfg: MqttConfig): MqttFiles {
  const ca = cfg.caFile === null ? null : readConfigFile('mqtt.caFile', cfg.caFile);
  if (ca && cfg.caFile !== null) parseCertificates('mqtt.caFile', cfg.caFile, ca);
  const cert = cfg.certFile === null ? null : readConfigFile('mqtt.certFile', cfg.certFile);
  const key = cfg.keyFile === null ? null : readConfigFile('mqtt.keyFile', cfg.keyFile);
  if (cert && key && cfg.certFile !== null && cfg.keyFile !== null) {
    const [leaf] = parseCertificates('mqtt.certFile', cfg.certFile, cert);
    if (!leaf.checkPrivateKey(parsePrivateKey(cfg.keyFile, key))) {
      throw new ConfigError(`config: mqtt.keyFile: ${JSON.stringify(cfg.keyFile)} is not the private key of the certificate in mqtt.certFile ${JSON.stringify(cfg.certFile)}; allowed: the key the certificate was made for`);
    }
  }
  return { ca, cert, key, credentials: cfg.credentialsFile === null ? null : readCredentials(cfg.credentialsFile) };
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
