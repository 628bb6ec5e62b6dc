import { execFileSync } from 'node:child_process';

/**
 * A network namespace of the test's own, joined to the test process's
 * namespace by a veth pair: the box side (boxAddr) inside, the host side
 * (hostAddr) here. Multicast sent by a service inside reaches only the veth
 * and the namespace's loopback, never the machine's real interfaces, and a
 * socket here that joins the group on hostAddr hears it like a phone on the
 * stage network would. Needs root (CAP_NET_ADMIN) and iproute2.
 *
 * Names start with STAGEBOX_NETNS_PREFIX (default "sb"): the namespace
 * `<prefix>test-<pid>x<n>`, the veth ends `<prefix>h…` and `<prefix>b…`, so
 * several people testing on one machine can tell theirs apart (and clean up
 * only theirs).
 */

let counter = 0;

const PREFIX_RULE = '1-4 characters, a lower-case letter then lower-case letters or digits (the veth names must stay within 15 characters)';

/** The name prefix from STAGEBOX_NETNS_PREFIX, checked: it ends up in interface names, which Linux caps at 15 bytes. */
export function netnsPrefix(env: NodeJS.ProcessEnv = process.env): string {
  const p = env.STAGEBOX_NETNS_PREFIX ?? 'sb';
  if (!/^[a-z][a-z0-9]{0,3}$/.test(p)) throw new RangeError(`STAGEBOX_NETNS_PREFIX: got ${JSON.stringify(p)}; allowed: ${PREFIX_RULE}`);
  return p;
}

function ip(args: string[]): string {
  try {
    return execFileSync('ip', args, { encoding: 'utf8', timeout: 5000, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`ip ${args.join(' ')} failed: ${(e.stderr ?? '').trim() || e.message}`);
  }
}

/** Why namespaces cannot be made here, or null when they can. */
export function netnsUnavailable(): string | null {
  if (process.getuid?.() !== 0) return 'needs root (ip netns add)';
  try {
    ip(['-V']);
  } catch {
    return 'needs iproute2 (the ip command)';
  }
  return null;
}

export interface NetnsOptions {
  /** Add a 224.0.0.0/4 route on the box side (a real box has a default route that covers it). Default true. */
  multicastRoute?: boolean;
}

export class TestNetns {
  private destroyed = false;

  private constructor(
    readonly name: string,
    readonly hostIf: string,
    readonly boxIf: string,
    readonly hostAddr: string,
    readonly boxAddr: string,
  ) {}

  /** Creates the namespace, the veth pair and addresses in a /24 of 10.0.0.0/8 chosen from the pid and a counter. */
  static create(opts: NetnsOptions = {}): TestNetns {
    const n = ++counter;
    const id = `${process.pid % 100000}x${n}`;
    const prefix = netnsPrefix();
    const name = `${prefix}test-${id}`;
    const hostIf = `${prefix}h${id}`;
    const boxIf = `${prefix}b${id}`;
    const subnet = `10.${200 + ((process.pid >> 8) % 50)}.${(process.pid + n * 37) % 256}`;
    const ns = new TestNetns(name, hostIf, boxIf, `${subnet}.2`, `${subnet}.1`);
    try {
      ip(['netns', 'add', name]);
      ip(['link', 'add', hostIf, 'type', 'veth', 'peer', 'name', boxIf]);
      ip(['link', 'set', boxIf, 'netns', name]);
      ip(['addr', 'add', `${ns.hostAddr}/24`, 'dev', hostIf]);
      ip(['link', 'set', hostIf, 'up']);
      ip(['-n', name, 'addr', 'add', `${ns.boxAddr}/24`, 'dev', boxIf]);
      ip(['-n', name, 'link', 'set', boxIf, 'up']);
      ip(['-n', name, 'link', 'set', 'lo', 'up']);
      if (opts.multicastRoute !== false) ip(['-n', name, 'route', 'add', '224.0.0.0/4', 'dev', boxIf]);
    } catch (err) {
      ns.destroy();
      throw err;
    }
    live.add(ns);
    return ns;
  }

  /** Gives the box's end of the veth one more address in its /24 (`<subnet>.<host>`, host 3-254), as a DHCP change or a second network would; returns it. */
  addBoxAddress(host: number): string {
    if (!Number.isInteger(host) || host < 3 || host > 254) throw new RangeError(`addBoxAddress: got ${host}; allowed: an integer 3-254 (1 and 2 are taken)`);
    const addr = `${this.boxAddr.slice(0, this.boxAddr.lastIndexOf('.'))}.${host}`;
    ip(['-n', this.name, 'addr', 'add', `${addr}/24`, 'dev', this.boxIf]);
    return addr;
  }

  /** Prefix for startService's wrapper: runs a command inside the namespace (ip execs it, so signals reach it). */
  get wrapper(): string[] {
    return ['ip', 'netns', 'exec', this.name];
  }

  /** Deletes the namespace; its veth end goes with it, and with it the host end. Idempotent. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    live.delete(this);
    try {
      ip(['netns', 'del', this.name]);
    } catch {
      // never created
    }
    try {
      ip(['link', 'del', this.hostIf]);
    } catch {
      // already gone with the namespace
    }
  }
}

const live = new Set<TestNetns>();
process.on('exit', () => {
  for (const ns of [...live]) ns.destroy();
});
