/**
 * The impaired-network harness on its own, for a person at a shell (and for
 * the test that SIGKILLs it):
 *
 *   node dist/bench/net/harness-cli.js --profile office-wifi [--listeners N] [--seed S] [--seconds T]
 *     sets up the namespaces, prints one JSON line saying how to enter them,
 *     runs until T seconds pass or SIGINT/SIGTERM, prints nh-impair's report.
 *   node dist/bench/net/harness-cli.js --profile office-wifi --simulate PPS [--seconds T]
 *     the same model on a synthetic PPS packet/s stream in virtual time, no
 *     namespaces: what a profile's figures come out as (bench/net-profiles/README.md).
 *
 * Exit codes: 0 done, 2 usage or profile error, 3 the harness cannot run here (the message says why).
 */
import { spawnSync } from 'node:child_process';
import { parseImpairLine } from './impair-report';
import { HarnessUnavailableError, IMPAIR_BIN, NetHarness, BOX_ADDR } from './net-harness';
import { impairArgs, loadProfile, profileNames, type NetProfile } from './net-profile';

const USAGE = `Usage: node dist/bench/net/harness-cli.js --profile NAME [--listeners N] [--seed S] [--seconds T] [--simulate PPS]
  --profile NAME   a file of bench/net-profiles/ (${profileNames().join(', ')})
  --listeners N    listener links, 1-16 (default 1)
  --seed S         seeds the model (default 1)
  --seconds T      stop after T seconds (default 60)
  --simulate PPS   no namespaces: run the model on a PPS packet/s stream in virtual time and print its report`;

interface Args {
  profile: string;
  listeners: number;
  seed: number;
  seconds: number;
  simulate: number | null;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { profile: '', listeners: 1, seed: 1, seconds: 60, simulate: null };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    if (flag === '--help' || flag === '-h') {
      process.stdout.write(`${USAGE}\n`);
      process.exit(0);
    }
    const value = argv[++i];
    if (value === undefined) throw new Error(`${flag}: a value is needed`);
    const num = (lo: number, hi: number, int: boolean): number => {
      const v = Number(value);
      if (!Number.isFinite(v) || v < lo || v > hi || (int && !Number.isInteger(v))) throw new Error(`${flag}: got "${value}"; allowed: ${int ? 'an integer' : 'a number'} ${lo}-${hi}`);
      return v;
    };
    if (flag === '--profile') a.profile = value;
    else if (flag === '--listeners') a.listeners = num(1, 16, true);
    else if (flag === '--seed') a.seed = num(0, Number.MAX_SAFE_INTEGER, true);
    else if (flag === '--seconds') a.seconds = num(0.1, 86400, false);
    else if (flag === '--simulate') a.simulate = num(1, 100000, false);
    else throw new Error(`unknown option "${flag}"; allowed: --profile, --listeners, --seed, --seconds, --simulate, --help`);
  }
  if (a.profile === '') throw new Error('--profile is required');
  return a;
}

function simulate(profile: NetProfile, a: Args): number {
  const r = spawnSync(IMPAIR_BIN, ['--simulate', String(a.simulate), '--links', String(a.listeners), '--seed', String(a.seed), '--max-seconds', String(a.seconds), ...impairArgs(profile)], {
    encoding: 'utf8',
  });
  if (r.status !== 0) {
    process.stderr.write(`harness-cli: ${IMPAIR_BIN}: ${r.error?.message ?? r.stderr.trim()}\n`);
    return 1;
  }
  process.stdout.write(`${JSON.stringify(parseImpairLine(r.stdout.trim()))}\n`);
  return 0;
}

async function live(profile: NetProfile, a: Args): Promise<number> {
  const h = await NetHarness.start({ profile, listeners: a.listeners, seed: a.seed, maxSeconds: a.seconds });
  const enter = (ns: 'box' | 'listener'): string => h.prefix(ns).slice(0, 2).join(' ');
  process.stdout.write(
    `${JSON.stringify({
      type: 'ready',
      profile: a.profile,
      box: { address: BOX_ADDR, enter: enter('box') },
      listeners: { addresses: h.listenerAddrs, enter: enter('listener') },
      namespaces: h.namespaces(),
      pids: h.pids(),
    })}\n`,
  );
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, a.seconds * 1000);
    for (const sig of ['SIGINT', 'SIGTERM'] as const) {
      process.once(sig, () => {
        clearTimeout(timer);
        resolve();
      });
    }
  });
  const report = await h.stop();
  process.stdout.write(`${JSON.stringify(report)}\n`);
  return 0;
}

async function main(): Promise<number> {
  let a: Args;
  let profile: NetProfile;
  try {
    a = parseArgs(process.argv.slice(2));
    profile = loadProfile(a.profile);
  } catch (err) {
    process.stderr.write(`harness-cli: ${(err as Error).message}\n`);
    return 2;
  }
  if (a.simulate !== null) return simulate(profile, a);
  try {
    return await live(profile, a);
  } catch (err) {
    process.stderr.write(`harness-cli: ${(err as Error).message}\n`);
    return err instanceof HarnessUnavailableError ? 3 : 1;
  }
}

main().then((code) => {
  process.exitCode = code;
});
