import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/config/config-loader';
import { ConfigError } from '../../src/config/config-errors';

const repo = path.resolve(__dirname, '../../..');

function file(content: unknown): string {
  const p = path.join(mkdtempSync(path.join(tmpdir(), 'stagebox-cfg-')), 'stagebox.json');
  writeFileSync(p, typeof content === 'string' ? content : JSON.stringify(content));
  return p;
}

function configError(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`);
    assert.equal(err.exitCode, 2);
    return err.message;
  }
  assert.fail('expected a ConfigError');
}

test('the appliance default config in rootfs-overlay is valid', () => {
  const { config } = loadConfig({ path: path.join(repo, 'rootfs-overlay/etc/stagebox/stagebox.json'), env: {} });
  assert.equal(config.server.port, 5100);
  assert.equal(config.capture.device, 'auto');
});

test('with no file at the default path every key takes its default', () => {
  const { config, path: used } = loadConfig({ env: { STAGEBOX_CONFIG: undefined } as NodeJS.ProcessEnv });
  // The default path exists only on a box; on a dev machine it is absent.
  if (used === null) {
    assert.equal(config.capture.rate, 48000);
    assert.equal(config.capture.periodFrames, 128);
    assert.equal(config.stream.sendQueuePackets, 8);
    assert.equal(config.pool.size, 'auto');
  }
});

test('env overrides win over the file', () => {
  const p = file({ server: { port: 6000 }, capture: { channels: 8 } });
  const { config, envApplied } = loadConfig({ path: p, env: { STAGEBOX_PORT: '7000', STAGEBOX_CHANNELS: 'auto' } });
  assert.equal(config.server.port, 7000);
  assert.equal(config.capture.channels, 'auto');
  assert.deepEqual(envApplied.sort(), ['STAGEBOX_CHANNELS', 'STAGEBOX_PORT']);
});

test('an out-of-range value names the key, the value and what is allowed', () => {
  const p = file({ capture: { periodFrames: 16 } });
  assert.equal(configError(() => loadConfig({ path: p, env: {} })), `config file ${p}: capture.periodFrames: got 16; allowed: a number >= 32`);
});

test('a value outside a set lists the allowed values', () => {
  const p = file({ capture: { rate: 22050 } });
  assert.equal(configError(() => loadConfig({ path: p, env: {} })), `config file ${p}: capture.rate: got 22050; allowed: 44100 or 48000 or 96000`);
});

test('"auto" or a number: both alternatives are named', () => {
  const p = file({ pool: { size: 'lots' } });
  assert.match(configError(() => loadConfig({ path: p, env: {} })), /pool\.size: got "lots"; allowed: "auto" or a number/);
});

test('an unknown key is named with its full path', () => {
  const p = file({ stream: { sendQueue: 4 } });
  assert.match(configError(() => loadConfig({ path: p, env: {} })), /unknown key "stream\.sendQueue" \(got 4\)/);
});

test('invalid JSON and a non-object file are rejected', () => {
  assert.match(configError(() => loadConfig({ path: file('{"server":'), env: {} })), /not valid JSON/);
  assert.match(configError(() => loadConfig({ path: file([1, 2]), env: {} })), /got an array; allowed: a JSON object/);
});

test('an explicit config path that does not exist is an error', () => {
  assert.match(configError(() => loadConfig({ path: '/nonexistent/stagebox.json', env: {} })), /config file \/nonexistent\/stagebox\.json: cannot read it \(ENOENT: no such file\)/);
});

test('a non-numeric env value names the variable', () => {
  assert.equal(configError(() => loadConfig({ path: file({}), env: { STAGEBOX_PORT: 'abc' } })), 'env STAGEBOX_PORT: got "abc"; allowed: a number');
});

test('rules across keys are checked: retryMaxMs below retryInitialMs', () => {
  const p = file({ capture: { retryInitialMs: 5000, retryMaxMs: 1000 } });
  assert.match(configError(() => loadConfig({ path: p, env: {} })), /capture\.retryMaxMs: got 1000; allowed: a number >= capture\.retryInitialMs \(5000\)/);
});

test('rules across keys are checked: the dashboard\'s red latency must be above amber', () => {
  const p = file({ dashboard: { latencyAmberMs: 30, latencyRedMs: 30 } });
  assert.equal(
    configError(() => loadConfig({ path: p, env: {} })),
    'config: dashboard.latencyRedMs: got 30; allowed: a number > dashboard.latencyAmberMs (30)',
  );
  const { config } = loadConfig({ path: file({}), env: {} });
  assert.deepEqual(config.dashboard, { maxViewers: 8, latencyAmberMs: 20, latencyRedMs: 50 });
});

test('recording: a drive path outside the allowed mounts, or not absolute and normalised, stops the start naming the key', () => {
  assert.equal(
    configError(() => loadConfig({ path: file({ recording: { dir: '/etc/shows' } }), env: {} })),
    'config: recording.dir: got "/etc/shows"; allowed: "auto", or a folder inside one of recording.drives (/media, /mnt, /run/media) or inside state.dir (/var/lib/stagebox)',
  );
  assert.match(configError(() => loadConfig({ path: file({ recording: { dir: '/media/../etc' } }), env: {} })), /^config file .*: recording\.dir: got "\/media\/\.\.\/etc"; .*an absolute path without "\.\.", "\." or a trailing "\/"/);
  assert.match(configError(() => loadConfig({ path: file({ recording: { drives: ['media'] } }), env: {} })), /^config file .*: recording\.drives\.0: got "media"; .*an absolute path/);
  assert.match(configError(() => loadConfig({ path: file({}), env: { STAGEBOX_RECORDING_DIR: '/srv/x' } })), /^config: recording\.dir: got "\/srv\/x"; allowed: "auto", or a folder inside one of recording\.drives/);
  const ok = loadConfig({ path: file({ recording: { dir: '/media/usb0/shows', layout: 'multi' }, state: { dir: '/tmp/sb' } }), env: {} }).config.recording;
  assert.deepEqual([ok.dir, ok.layout, ok.bufferS, ok.syncIntervalMs, ok.minFreeMiB], ['/media/usb0/shows', 'multi', 4, 1000, 64]);
  assert.equal(loadConfig({ path: file({ recording: { dir: '/tmp/sb/recordings' }, state: { dir: '/tmp/sb' } }), env: {} }).config.recording.dir, '/tmp/sb/recordings');
});
