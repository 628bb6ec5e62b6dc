import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT, runCli } from '../helpers/service-process';

/**
 * The appliance's own files (rootfs-overlay/), each checked with the real
 * tool where this Debian 12 machine has one. Nothing is applied: a container
 * can neither set sysctls nor run udev, networkd or journald as the system's.
 */

const OVERLAY = path.join(REPO_ROOT, 'rootfs-overlay');
const at = (p: string): string => path.join(OVERLAY, p);

function listFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = path.join(dir, n);
    return statSync(p).isDirectory() ? listFiles(p) : [p];
  });
}

/** [section, key, value] of an INI-style systemd config file (systemd.syntax(7)). */
function parseIni(file: string): [string, string, string][] {
  const out: [string, string, string][] = [];
  let section = '';
  for (const [i, raw] of readFileSync(file, 'utf8').split('\n').entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const sec = /^\[([A-Za-z0-9]+)\]$/.exec(line);
    if (sec) {
      section = sec[1]!;
      continue;
    }
    const kv = /^([A-Za-z0-9]+)=(.*)$/.exec(line);
    assert.ok(kv && section, `${path.basename(file)}:${i + 1}: not "Key=value" inside a [Section]: ${JSON.stringify(raw)}`);
    out.push([section, kv[1]!, kv[2]!]);
  }
  return out;
}

/**
 * The Section.Key names a systemd daemon accepts: its config parser's gperf
 * table is compiled into the binary as "Section.Key" strings, so the real
 * daemon's own list is read, not a list typed into this test.
 */
function daemonKeys(binary: string): Set<string> {
  const text = execFileSync('strings', ['-a', binary], { encoding: 'utf8', maxBuffer: 64 << 20 });
  return new Set(text.split('\n').filter((l) => /^[A-Z][A-Za-z0-9]*\.[A-Z][A-Za-z0-9]*$/.test(l)));
}

describe('rootfs overlay', () => {
  test('every file but the JSON config opens with a comment explaining it', () => {
    const files = listFiles(OVERLAY).filter((f) => !f.endsWith('.json') && !f.endsWith('README.md'));
    assert.ok(files.length >= 4, `overlay files: ${files}`);
    for (const f of files) assert.match(readFileSync(f, 'utf8'), /^# stagebox: /, path.relative(OVERLAY, f));
  });

  test('the default stagebox.json parses with the service\'s own schema (--print-config exits 0)', async () => {
    const r = await runCli(['--config', at('etc/stagebox/stagebox.json'), '--print-config']);
    assert.equal(r.code, 0, r.stderr);
    const cfg = JSON.parse(r.stdout) as { capture: { device: string }; server: { port: number } };
    assert.equal(cfg.capture.device, 'auto');
    assert.equal(cfg.server.port, 5100);
  });

  test('sysctl.d: every name exists under /proc/sys and every value is in range (not applied: a container cannot)', () => {
    const file = at('etc/sysctl.d/90-stagebox.conf');
    const values = new Map<string, string[]>();
    for (const raw of readFileSync(file, 'utf8').split('\n')) {
      const line = raw.trim();
      if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
      const m = /^([a-z0-9_.]+)\s*=\s*(.+)$/.exec(line);
      assert.ok(m, `not "name = value": ${JSON.stringify(raw)}`);
      const proc = path.join('/proc/sys', m[1]!.replace(/\./g, '/'));
      assert.ok(existsSync(proc), `${m[1]}: no ${proc}`);
      const fields = m[2]!.trim().split(/\s+/);
      const current = readFileSync(proc, 'utf8').trim().split(/\s+/);
      assert.equal(fields.length, current.length, `${m[1]}: ${fields.length} field(s), the kernel has ${current.length}`);
      if (/^\d+$/.test(current[0]!)) for (const f of fields) assert.ok(/^\d+$/.test(f) && Number(f) < 2 ** 32, `${m[1]}: ${f} is not an unsigned 32-bit integer`);
      values.set(m[1]!, fields);
    }
    const num = (k: string, i = 0): number => Number(values.get(k)![i]);
    const [wmin, wdef, wmax] = [0, 1, 2].map((i) => num('net.ipv4.tcp_wmem', i)) as [number, number, number];
    assert.ok(wmin <= wdef && wdef <= wmax, `tcp_wmem ${wmin} ${wdef} ${wmax}: min <= default <= max`);
    assert.ok(num('net.ipv4.tcp_notsent_lowat') <= wmax, 'tcp_notsent_lowat within the send buffer');
    assert.ok(num('kernel.sched_rt_runtime_us') < num('kernel.sched_rt_period_us'), 'RT throttling leaves normal tasks some of every period');
    assert.ok(num('vm.swappiness') <= 200);
    assert.ok(['fq_codel', 'fq', 'cake', 'pfifo_fast'].includes(values.get('net.core.default_qdisc')![0]!));
  });

  test('udev rule: every key and operator is one udev knows, the RUN program exists (minimal parse: Debian 12\'s udevadm 252 has no "verify", added in 253)', () => {
    const file = at('etc/udev/rules.d/90-stagebox-audio.rules');
    const matchKeys = new Set(['ACTION', 'SUBSYSTEM', 'SUBSYSTEMS', 'KERNEL', 'KERNELS', 'DRIVER', 'DRIVERS', 'ATTR', 'ATTRS', 'ENV', 'TAG', 'TAGS', 'DEVPATH', 'NAME', 'SYMLINK', 'PROGRAM', 'RESULT', 'TEST']);
    const assignKeys = new Set(['RUN', 'ENV', 'TAG', 'SYMLINK', 'OWNER', 'GROUP', 'MODE', 'OPTIONS', 'GOTO', 'LABEL', 'IMPORT', 'NAME', 'ATTR']);
    let rules = 0;
    for (const [i, raw] of readFileSync(file, 'utf8').split('\n').entries()) {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) continue;
      rules++;
      const where = `line ${i + 1}`;
      const pair = /\s*([A-Z]+)(?:\{([^}]+)\})?\s*(==|!=|\+=|-=|:=|=)\s*"((?:[^"\\]|\\.)*)"\s*(,|$)/y;
      let pos = 0;
      const seen: string[] = [];
      while (pos < line.length) {
        pair.lastIndex = pos;
        const m = pair.exec(line);
        assert.ok(m, `${where}: cannot parse from ${JSON.stringify(line.slice(pos))}`);
        const [, key, , op, value] = m as unknown as [string, string, string | undefined, string, string];
        const isMatch = op === '==' || op === '!=';
        assert.ok((isMatch ? matchKeys : assignKeys).has(key), `${where}: ${key} ${op}: not a udev ${isMatch ? 'match' : 'assignment'} key`);
        if (key === 'RUN') {
          const prog = value.split(/\s+/)[0]!;
          assert.ok(path.isAbsolute(prog), `${where}: RUN program ${prog} must be an absolute path`);
          assert.ok(existsSync(prog), `${where}: RUN program ${prog} does not exist here`);
        }
        seen.push(key);
        pos = pair.lastIndex;
      }
      assert.ok(seen.includes('ACTION') && seen.includes('SUBSYSTEM') && seen.includes('RUN'), `${where}: ${seen}`);
    }
    assert.equal(rules, 1);
  });

  test('the udev rule reloads exactly the unit in systemd/ (whose ExecReload is SIGHUP)', () => {
    const rule = readFileSync(at('etc/udev/rules.d/90-stagebox-audio.rules'), 'utf8');
    assert.match(rule, /RUN\+="\/bin\/systemctl --no-block try-reload-or-restart stagebox\.service"/);
    assert.match(readFileSync(path.join(REPO_ROOT, 'systemd', 'stagebox.service'), 'utf8'), /^ExecReload=\/bin\/kill -HUP \$MAINPID$/m);
  });

  test('networkd: DHCP with IPv4 link-local fallback; every Section.Key is one systemd-networkd knows', () => {
    const file = at('etc/systemd/network/80-stagebox-wired.network');
    const known = daemonKeys('/lib/systemd/systemd-networkd');
    const entries = parseIni(file);
    for (const [s, k] of entries) assert.ok(known.has(`${s}.${k}`), `${s}.${k} is not in systemd-networkd's table`);
    const get = (s: string, k: string) => entries.find((e) => e[0] === s && e[1] === k)?.[2];
    assert.equal(get('Network', 'DHCP'), 'yes');
    assert.equal(get('Network', 'LinkLocalAddressing'), 'yes');
    assert.equal(get('Network', 'IPv4LLRoute'), 'yes');
    // mDNS needs a route for multicast when there is no default route (test/discovery: "no route for multicast").
    assert.equal(get('Route', 'Destination'), '224.0.0.0/4');
    assert.equal(get('Route', 'Scope'), 'link');
  });

  test('journald: volatile and size-capped; every Section.Key is one systemd-journald knows, and cat-config finds the drop-in', () => {
    const file = at('etc/systemd/journald.conf.d/90-stagebox.conf');
    const known = daemonKeys('/lib/systemd/systemd-journald');
    const entries = parseIni(file);
    for (const [s, k] of entries) assert.ok(known.has(`${s}.${k}`), `${s}.${k} is not in systemd-journald's table`);
    const get = (k: string) => entries.find((e) => e[1] === k)?.[2];
    assert.equal(get('Storage'), 'volatile');
    assert.match(get('RuntimeMaxUse') ?? '', /^\d+[KMG]$/);
    const r = spawnSync('systemd-analyze', ['cat-config', `--root=${OVERLAY}`, 'systemd/journald.conf'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.ok(r.stdout.includes('journald.conf.d/90-stagebox.conf'), r.stdout.slice(0, 300));
  });
});
