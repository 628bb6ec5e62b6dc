import { configSchema, redactSecrets } from '../config/config-schema';
import { ConfigError } from '../config/config-errors';
import { loadConfig, DEFAULT_CONFIG_PATH } from '../config/config-loader';
import { parseCommandLine } from '../config/command-line';
import { Controller, VERSION } from './controller';
import { createLogger, flushLogger } from '../logging/logger';
import { SdNotify } from './sd-notify';

const USAGE = `Usage: stagebox [options]
       stagebox listen <url> … (receive a stream: stagebox listen --help)

Captures every input of the USB audio interface and streams it to in-ear
monitor clients over WebSocket (HTTP and WebSocket on server.port, 5100).

Options:
  --config PATH      config file (default ${DEFAULT_CONFIG_PATH}, or $STAGEBOX_CONFIG)
  --print-config     print the effective configuration as JSON and exit
  --print-config-doc print docs/configuration.md (generated from the schema) and exit
  --version          print the version and exit
  -h, --help         show this help and exit

Environment overrides: STAGEBOX_DEVICE, STAGEBOX_WAV_FILE, STAGEBOX_CHANNELS,
STAGEBOX_FORMAT, STAGEBOX_RATE, STAGEBOX_PERIOD_FRAMES, STAGEBOX_HOST,
STAGEBOX_PORT, STAGEBOX_MAX_CLIENTS, STAGEBOX_POOL_SIZE,
STAGEBOX_POOL_INLINE_BUDGET_PCT, STAGEBOX_LOG_LEVEL, STAGEBOX_STATE_DIR.
STAGEBOX_PROC_ASOUND replaces /proc/asound as the place sound cards are probed (tests).

Signals: SIGTERM/SIGINT stop gracefully; SIGHUP re-probes the sound cards
(systemctl reload; the udev rule sends it when a USB interface comes or goes).
Under systemd (NOTIFY_SOCKET set) it sends READY=1, STATUS=, STOPPING=1, and
WATCHDOG=1 while the audio path is healthy (WATCHDOG_USEC).
Exit codes: 0 clean stop, 1 runtime failure, 2 invalid configuration or usage.`;

/** Stop must finish within this; the issue allows 2 s. */
const STOP_DEADLINE_MS = 1800;

interface Args {
  config?: string;
  printConfig: boolean;
  printConfigDoc: boolean;
  help: boolean;
  version: boolean;
}

function parseArgs(argv: string[]): Args {
  const { values } = parseCommandLine(argv, {
    options: {
      config: { type: 'string' },
      'print-config': { type: 'boolean' },
      'print-config-doc': { type: 'boolean' },
      version: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    positionals: false,
    allowed: '--config PATH, --print-config, --print-config-doc, --version, --help',
    hint: () => 'allowed: a file path',
  });
  return {
    config: values.config,
    printConfig: values['print-config'] ?? false,
    printConfigDoc: values['print-config-doc'] ?? false,
    help: values.help ?? false,
    version: values.version ?? false,
  };
}

/**
 * Exit 2 for an invalid configuration. The message goes to stderr (the
 * journal) and, under systemd, also as STATUS= so `systemctl status` shows
 * why; the unit's RestartPreventExitStatus=2 stops a restart loop on it.
 */
function refuseConfig(err: ConfigError): number {
  process.stderr.write(`stagebox: invalid configuration:\n${err.message}\n`);
  if (process.env.NOTIFY_SOCKET) {
    const log = createLogger('warn');
    SdNotify.fromEnv(log).send(`STATUS=invalid configuration (exit 2): ${err.message.split('\n').join('; ')}`);
    flushLogger(log);
  }
  return 2;
}

export interface MainResult {
  code: number;
  /**
   * Capture threads still blocked in the driver. libuv joins its threadpool
   * at exit, so process.exit() would hang on them; the caller ends the
   * process by SIGTERM instead (a clean stop for systemd).
   */
  stuckThreads: number;
}

/** Runs the service; resolves with the exit code once stopped. */
export async function main(argv: string[]): Promise<MainResult> {
  const r = await run(argv);
  return typeof r === 'number' ? { code: r, stuckThreads: 0 } : r;
}

async function run(argv: string[]): Promise<number | MainResult> {
  let args: Args;
  try {
    args = parseArgs(argv);
  } catch (err) {
    process.stderr.write(`stagebox: ${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (args.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (args.version) {
    process.stdout.write(`${VERSION}\n`);
    return 0;
  }
  if (args.printConfigDoc) {
    // Loaded lazily: only this flag needs the doc renderer.
    const { renderConfigDoc } = require('../config/config-doc') as { renderConfigDoc(): string };
    process.stdout.write(renderConfigDoc());
    return 0;
  }
  let loaded;
  try {
    loaded = loadConfig({ path: args.config });
  } catch (err) {
    if (err instanceof ConfigError) return refuseConfig(err);
    throw err;
  }
  if (args.printConfig) {
    process.stdout.write(`${JSON.stringify(redactSecrets(configSchema.parse(loaded.config)), null, 2)}\n`);
    return 0;
  }
  const log = createLogger(loaded.config.log.level);
  log.info({ version: VERSION, config: loaded.path ?? '(defaults: no file)', env: loaded.envApplied }, 'stagebox starting');
  let controller: Controller;
  try {
    controller = await Controller.open(loaded.config, log, undefined, process.env.STAGEBOX_PROC_ASOUND || undefined);
  } catch (err) {
    if (err instanceof ConfigError) return refuseConfig(err);
    log.fatal({ err: (err as Error).message }, 'start failed');
    flushLogger(log);
    return 1;
  }
  const onHup = (): void => {
    log.info({ signal: 'SIGHUP' }, 're-probing capture devices');
    controller.reload().catch((err: Error) => log.error({ err: err.message }, 're-probe failed'));
  };
  process.on('SIGHUP', onHup);
  let stopping: Promise<number> | null = null;
  const stop = (signal: string): Promise<number> => {
    if (stopping) return stopping;
    log.info({ signal }, 'stopping');
    const deadline = new Promise<number>((resolve) =>
      setTimeout(() => {
        log.error({ deadlineMs: STOP_DEADLINE_MS }, 'stop took too long; exiting anyway');
        resolve(1);
      }, STOP_DEADLINE_MS).unref(),
    );
    stopping = Promise.race([controller.stop().then(() => 0), deadline]);
    return stopping;
  };
  const exitCode = new Promise<number>((resolve) => {
    process.once('SIGTERM', () => void stop('SIGTERM').then(resolve));
    process.once('SIGINT', () => void stop('SIGINT').then(resolve));
  });
  try {
    await controller.start();
  } catch (err) {
    if (err instanceof ConfigError) {
      await controller.stop();
      return refuseConfig(err);
    }
    log.fatal({ err: (err as Error).message }, 'start failed');
    await controller.stop();
    flushLogger(log);
    return 1;
  }
  const code = await exitCode;
  process.off('SIGHUP', onHup);
  const stuckThreads = controller.unfinishedCaptureThreads();
  if (stuckThreads > 0) log.warn({ code, stuckThreads }, 'stopped; capture thread(s) blocked in the ALSA driver: ending the process by SIGTERM, as a normal exit would wait for them forever');
  else log.info({ code }, 'stopped');
  flushLogger(log);
  return { code, stuckThreads };
}
