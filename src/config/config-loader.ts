import { readFileSync } from 'node:fs';
import { isAbsolute, relative, resolve } from 'node:path';
import { configSchema, ENV_OVERRIDES, type Config } from './config-schema';
import { ConfigError, describeConfigIssues } from './config-errors';

export const DEFAULT_CONFIG_PATH = '/etc/stagebox/stagebox.json';

export interface LoadedConfig {
  config: Config;
  /** The file read, or null when the default path did not exist. */
  path: string | null;
  /** Env variables that overrode file values, by name. */
  envApplied: string[];
}

/** Why a file read failed, in words: "EISDIR: it is a directory". */
const READ_FAILURES: Readonly<Record<string, string>> = {
  ENOENT: 'no such file',
  EISDIR: 'it is a directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EIO: 'input/output error',
  ENOTDIR: 'a part of the path is not a directory',
  ELOOP: 'too many symbolic links',
};

function readFailure(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (e.code === undefined) return String(err);
  return `${e.code}: ${READ_FAILURES[e.code] ?? e.message}`;
}

function isInsideDir(p: string, root: string): boolean {
  const rel = relative(root, p);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

function setDotted(target: Record<string, unknown>, dotted: string, value: unknown): void {
  const parts = dotted.split('.');
  let node = target;
  for (const p of parts.slice(0, -1)) {
    const next = node[p];
    if (next === undefined) node[p] = {};
    else if (next === null || typeof next !== 'object' || Array.isArray(next)) {
      throw new ConfigError(`config: ${parts.slice(0, parts.indexOf(p) + 1).join('.')}: got ${JSON.stringify(next)}; allowed: an object`);
    }
    node = node[p] as Record<string, unknown>;
  }
  node[parts[parts.length - 1]!] = value;
}

function envValue(name: string, text: string, type: 'string' | 'number' | 'auto-number'): unknown {
  if (type === 'string') return text;
  if (type === 'auto-number' && text === 'auto') return 'auto';
  if (!/^-?\d+(\.\d+)?$/.test(text.trim())) {
    throw new ConfigError(`env ${name}: got ${JSON.stringify(text)}; allowed: a number${type === 'auto-number' ? ' or "auto"' : ''}`);
  }
  return Number(text);
}

/**
 * Reads the config file (explicit path must exist; the default path may be
 * absent), applies STAGEBOX_* env overrides, and parses the result once.
 * Throws ConfigError naming the key, the value and what is allowed.
 */
export function loadConfig(opts: { path?: string | undefined; env?: NodeJS.ProcessEnv }): LoadedConfig {
  const env = opts.env ?? process.env;
  const explicit = opts.path ?? env.STAGEBOX_CONFIG;
  const path = explicit ?? DEFAULT_CONFIG_PATH;
  let raw: unknown = {};
  let used: string | null = path;
  let text: string | undefined;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' && explicit === undefined) used = null;
    else throw new ConfigError(`config file ${path}: cannot read it (${readFailure(err)}); allowed: a readable JSON file`);
  }
  if (text !== undefined) {
    try {
      raw = JSON.parse(text);
    } catch (err) {
      throw new ConfigError(`config file ${path}: not valid JSON (${(err as Error).message})`);
    }
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
      throw new ConfigError(`config file ${path}: got ${Array.isArray(raw) ? 'an array' : JSON.stringify(raw)}; allowed: a JSON object`);
    }
  }
  const merged = structuredClone(raw) as Record<string, unknown>;
  const envApplied: string[] = [];
  for (const [name, spec] of Object.entries(ENV_OVERRIDES)) {
    const text = env[name];
    if (text === undefined || text === '') continue;
    setDotted(merged, spec.key, envValue(name, text, spec.type));
    envApplied.push(name);
  }
  const parsed = configSchema.safeParse(merged);
  if (!parsed.success) {
    const source = used ? `config file ${used}` : 'config';
    throw new ConfigError(describeConfigIssues(envApplied.length ? `${source} (with ${envApplied.join(', ')})` : source, merged, parsed.error));
  }
  const config = parsed.data;
  if (config.capture.retryMaxMs < config.capture.retryInitialMs) {
    throw new ConfigError(
      `config: capture.retryMaxMs: got ${config.capture.retryMaxMs}; allowed: a number >= capture.retryInitialMs (${config.capture.retryInitialMs})`,
    );
  }
  if (config.stream.heartbeatTimeoutMs <= config.stream.heartbeatIntervalMs) {
    throw new ConfigError(
      `config: stream.heartbeatTimeoutMs: got ${config.stream.heartbeatTimeoutMs}; allowed: a number > stream.heartbeatIntervalMs (${config.stream.heartbeatIntervalMs})`,
    );
  }
  if (config.mqtt.reconnectMaxMs < config.mqtt.reconnectInitialMs) {
    throw new ConfigError(
      `config: mqtt.reconnectMaxMs: got ${config.mqtt.reconnectMaxMs}; allowed: a number >= mqtt.reconnectInitialMs (${config.mqtt.reconnectInitialMs})`,
    );
  }
  if ((config.mqtt.certFile === null) !== (config.mqtt.keyFile === null)) {
    const [set, unset] = config.mqtt.certFile === null ? ['mqtt.keyFile', 'mqtt.certFile'] : ['mqtt.certFile', 'mqtt.keyFile'];
    throw new ConfigError(`config: ${unset}: got null while ${set} is set; allowed: both set (a client certificate and its key) or both null`);
  }
  if (config.dashboard.latencyRedMs <= config.dashboard.latencyAmberMs) {
    throw new ConfigError(
      `config: dashboard.latencyRedMs: got ${config.dashboard.latencyRedMs}; allowed: a number > dashboard.latencyAmberMs (${config.dashboard.latencyAmberMs})`,
    );
  }
  const rec = config.recording;
  if (rec.dir !== 'auto' && !rec.drives.some((d) => isInsideDir(rec.dir, d)) && !isInsideDir(rec.dir, resolve(config.state.dir))) {
    throw new ConfigError(
      `config: recording.dir: got ${JSON.stringify(rec.dir)}; allowed: "auto", or a folder inside one of recording.drives (${rec.drives.join(', ')}) or inside state.dir (${config.state.dir})`,
    );
  }
  return { config, path: used, envApplied };
}
