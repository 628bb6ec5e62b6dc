/**
 * stagebox benchmark: starts the real service per scenario, drives it with
 * WebSocket clients from a separate process, prints one JSON line per
 * scenario on stdout (progress on stderr).
 *
 *   node dist/bench/run-bench.js [--scenarios seed,wide] [--seconds N] [--monitoring on|off]
 *   (or env SCENARIOS / SECONDS / MONITORING; flags win)
 */
import { cleanupAllSync, installCleanupHandlers } from './cleanup';
import { runScenario, SCENARIO_NAMES, type ScenarioName } from './scenarios';
import { SOAK_WINDOW_FACTOR } from './soak-scenario';
import { realtimeInEffect, setMonitoring, setRealtime, type Monitoring } from './service-process';
import { wifiBudgetMs, WIFI_DEFAULT_SECONDS } from './wifi-scenario';

const USAGE = `Usage: node dist/bench/run-bench.js [--scenarios LIST] [--seconds N] [--monitoring on|off]

  --scenarios LIST  comma-separated, run in this order (default: ${SCENARIO_NAMES.join(',')})
  --seconds N       measurement window per scenario, 1-600 (default 10; wifi: 60 per network profile)
  --realtime R      on (default): the service runs SCHED_FIFO 10 (chrt), as the appliance's unit
                    runs it, when this machine allows it; off: normal priority
  --monitoring M    on (default): system sampling and MQTT health every 1 s to the
                    embedded broker on a free loopback port; off: MQTT off and no system sampling
Env SCENARIOS, SECONDS and MONITORING are used when the flags are absent.
Output: one JSON line per scenario on stdout; progress on stderr.
Exit code: 0 all scenarios ran, 1 a scenario failed, 2 usage error.`;

const DEFAULT_SECONDS = 10;
/** A scenario stuck past this is torn down: every wait inside is bounded, this is the backstop. */
const FIXED_WATCHDOG_EXTRA_MS = 120_000;
const RAMP_WATCHDOG_MS = 300_000;

class UsageError extends Error {}

interface Args {
  scenarios: ScenarioName[];
  seconds: number;
  secondsGiven: boolean;
  monitoring: Monitoring;
  realtime: boolean;
}

function parseScenarios(text: string): ScenarioName[] {
  const names = text.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  if (names.length === 0) throw new UsageError('--scenarios: got an empty list');
  for (const n of names) {
    if (!(SCENARIO_NAMES as readonly string[]).includes(n)) throw new UsageError(`--scenarios: unknown scenario "${n}"; allowed: ${SCENARIO_NAMES.join(', ')}`);
  }
  return names as ScenarioName[];
}

function parseSeconds(text: string): number {
  const v = Number(text);
  if (!/^\d+(\.\d+)?$/.test(text.trim()) || v < 1 || v > 600) throw new UsageError(`--seconds: got "${text}"; allowed: a number of seconds, 1-600`);
  return v;
}

function parseArgs(argv: string[], env: NodeJS.ProcessEnv): Args | 'help' {
  let scenarios: string | undefined = env.SCENARIOS?.trim() || undefined;
  let seconds: string | undefined = env.SECONDS?.trim() || undefined;
  let monitoring = env.MONITORING?.trim() || 'on';
  let realtime = env.REALTIME?.trim() || 'on';
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const eq = arg.indexOf('=');
    const [flag, inline] = eq > 0 ? [arg.slice(0, eq), arg.slice(eq + 1)] : [arg, undefined];
    if (flag === '--help' || flag === '-h') return 'help';
    if (flag !== '--scenarios' && flag !== '--seconds' && flag !== '--monitoring' && flag !== '--realtime') {
      throw new UsageError(`unknown option "${arg}"; allowed: --scenarios LIST, --seconds N, --monitoring on|off, --realtime on|off, --help`);
    }
    const value = inline ?? argv[++i];
    if (value === undefined) throw new UsageError(`${flag}: a value is needed`);
    if (flag === '--scenarios') scenarios = value;
    else if (flag === '--monitoring') monitoring = value;
    else if (flag === '--realtime') realtime = value;
    else seconds = value;
  }
  if (monitoring !== 'on' && monitoring !== 'off') throw new UsageError(`--monitoring: got "${monitoring}"; allowed: on, off`);
  if (realtime !== 'on' && realtime !== 'off') throw new UsageError(`--realtime: got "${realtime}"; allowed: on, off`);
  return {
    scenarios: scenarios === undefined ? [...SCENARIO_NAMES] : parseScenarios(scenarios),
    seconds: seconds === undefined ? DEFAULT_SECONDS : parseSeconds(seconds),
    secondsGiven: seconds !== undefined,
    monitoring: monitoring as Monitoring,
    realtime: realtime === 'on',
  };
}

function log(msg: string): void {
  process.stderr.write(`bench: ${msg}\n`);
}

/** Rejects after `ms` and kills every child, which makes the stuck scenario's own waits fail fast. */
function withWatchdog<T>(p: Promise<T>, ms: number, name: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const watchdog = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      cleanupAllSync();
      reject(new Error(`${name}: still running after ${Math.round(ms / 1000)} s; child processes killed`));
    }, ms);
  });
  return Promise.race([p, watchdog]).finally(() => clearTimeout(timer));
}

async function main(): Promise<number> {
  let args: Args | 'help';
  try {
    args = parseArgs(process.argv.slice(2), process.env);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`run-bench: ${err.message}\n${USAGE}\n`);
    return 2;
  }
  if (args === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  installCleanupHandlers();
  const { seconds } = args;
  setMonitoring(args.monitoring);
  log(`monitoring ${args.monitoring}`);
  const noRealtime = setRealtime(args.realtime);
  log(noRealtime ?? (args.realtime ? 'service at SCHED_FIFO 10, as the appliance runs it' : 'service at normal priority (--realtime off)'));
  let failures = 0;
  for (const name of args.scenarios) {
    const t0 = Date.now();
    const watchdogMs =
      name === 'ramp' || name === 'shared' || name === 'udp-shared'
        ? RAMP_WATCHDOG_MS + 2 * seconds * 1000
        : name === 'soak'
          ? 2 * FIXED_WATCHDOG_EXTRA_MS + 2 * SOAK_WINDOW_FACTOR * seconds * 1000
        : name === 'wifi'
          ? wifiBudgetMs(args.secondsGiven ? seconds : WIFI_DEFAULT_SECONDS)
          : FIXED_WATCHDOG_EXTRA_MS + seconds * 1000;
    try {
      const line = await withWatchdog(runScenario(name, { seconds, secondsGiven: args.secondsGiven, log }), watchdogMs, name);
      process.stdout.write(`${JSON.stringify({ serviceRealtime: realtimeInEffect(), ...line })}\n`);
      log(`${name}: done in ${Math.round((Date.now() - t0) / 1000)} s`);
    } catch (err) {
      failures++;
      const message = (err as Error).message;
      log(`${name}: FAILED: ${message}`);
      process.stdout.write(`${JSON.stringify({ scenario: name, error: message.split('\n')[0] })}\n`);
    } finally {
      // Normally a no-op; after a failure it reaps whatever the scenario left behind.
      cleanupAllSync();
    }
  }
  return failures > 0 ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: Error) => {
    process.stderr.write(`run-bench: fatal: ${err.stack ?? err.message}\n`);
    cleanupAllSync();
    process.exitCode = 1;
  },
);
