import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { removeTempDirs, runCli, writeTempFile, type CliResult } from '../helpers/service-process';
import { selfSignedCert } from '../helpers/mosquitto';
import { NotifySocket } from '../helpers/notify-socket';

/**
 * The command line and the config file, through the real binary: invalid
 * configuration exits with code 2 and a stderr message naming the key, the
 * value and what is allowed; --help and --print-config exit 0.
 */

const sockets: NotifySocket[] = [];
after(() => {
  removeTempDirs();
  for (const s of sockets) s.close();
});

/** Stops a run that (wrongly) got as far as listening, instead of waiting for the timeout. */
const LISTENING = /"msg":"listening"/;

function configFile(obj: unknown): string {
  return writeTempFile('stagebox.json', typeof obj === 'string' ? obj : JSON.stringify(obj));
}

function show(r: CliResult): string {
  return `exit ${r.code} (signal ${r.signal}); stderr: ${JSON.stringify(r.stderr.slice(0, 1500))}; stdout: ${JSON.stringify(r.stdout.slice(0, 500))}`;
}

function assertConfigRejected(r: CliResult, mustMention: string[]): void {
  assert.equal(r.code, 2, `expected exit code 2 for an invalid configuration; ${show(r)}`);
  for (const m of mustMention) assert.ok(r.stderr.includes(m), `stderr should mention ${JSON.stringify(m)}; ${show(r)}`);
  assert.ok(!r.stoppedEarly && !r.stdout.includes('"msg":"listening"'), `the service must not start listening on an invalid configuration; ${show(r)}`);
}

describe('invalid configuration is refused with exit code 2', () => {
  test('an unknown key in a section is refused and the message names the key', async () => {
    const r = await runCli(['--config', configFile({ capture: { devise: 'test-signal' } })]);
    assertConfigRejected(r, ['capture.devise']);
  });

  test('an unknown top-level key is refused and the message names the key', async () => {
    const r = await runCli(['--config', configFile({ servr: { port: 0 } })]);
    assertConfigRejected(r, ['servr']);
  });

  test('capture.rate 22050 is refused naming the key, the value and the allowed rates', async () => {
    const r = await runCli(['--config', configFile({ capture: { device: 'test-signal', rate: 22050 } })]);
    assertConfigRejected(r, ['capture.rate', '22050', 'allowed', '44100', '48000', '96000']);
  });

  test('capture.periodFrames 16 is refused naming the key, the value and the lower bound 32', async () => {
    const r = await runCli(['--config', configFile({ capture: { device: 'test-signal', periodFrames: 16 } })]);
    assertConfigRejected(r, ['capture.periodFrames', '16', 'allowed', '32']);
  });

  test('capture.channels 65 is refused naming the key, the value and the upper bound 64', async () => {
    const r = await runCli(['--config', configFile({ capture: { device: 'test-signal', channels: 65 } })]);
    assertConfigRejected(r, ['capture.channels', '65', 'allowed', '64']);
  });

  test('a config file that is not valid JSON is refused and the message names the file', async () => {
    const file = configFile('{ "capture": { "device": "test-signal", } ');
    const r = await runCli(['--config', file]);
    assertConfigRejected(r, [file, 'JSON']);
  });

  test('a JSON array as the config file is refused', async () => {
    const r = await runCli(['--config', configFile([1, 2])]);
    assertConfigRejected(r, ['allowed']);
  });

  test('--config naming a file that does not exist is refused and the message names the path', async () => {
    const missing = '/nonexistent-stagebox-dir/stagebox.json';
    const r = await runCli(['--config', missing]);
    assertConfigRejected(r, [missing]);
  });

  // We run as root, so a chmod 000 file is still readable: these are reads that fail for root too.
  test('--config naming a directory is refused with exit 2, naming the path and EISDIR', async () => {
    const dir = path.dirname(configFile({}));
    const r = await runCli(['--config', dir]);
    assertConfigRejected(r, [`config file ${dir}: cannot read it (EISDIR: it is a directory)`, 'allowed: a readable JSON file']);
  });

  test('--config naming a file whose read fails (/proc/self/mem: EIO) is refused with exit 2, naming the path and the errno', async () => {
    const r = await runCli(['--config', '/proc/self/mem']);
    assertConfigRejected(r, ['config file /proc/self/mem: cannot read it (EIO: input/output error)']);
  });

  test('under systemd (NOTIFY_SOCKET set) an unreadable config file is also sent as STATUS=, and READY=1 never comes', async () => {
    const ns = await NotifySocket.open();
    sockets.push(ns);
    const dir = path.dirname(configFile({}));
    const r = await runCli(['--config', dir], { env: { NOTIFY_SOCKET: ns.address } });
    assertConfigRejected(r, [dir, 'EISDIR']);
    const status = await ns.waitFor((m) => 'STATUS' in m.fields, 5000, 'a STATUS= line');
    assert.equal(status.fields.STATUS, `invalid configuration (exit 2): config file ${dir}: cannot read it (EISDIR: it is a directory); allowed: a readable JSON file`);
    assert.deepEqual(ns.messages.filter((m) => 'READY' in m.fields || 'WATCHDOG' in m.fields), []);
  });

  test('under systemd a config refused with several problems sends them on one STATUS= line', async () => {
    const ns = await NotifySocket.open();
    sockets.push(ns);
    const r = await runCli(['--config', configFile({ capture: { rate: 22050, channels: 65 } })], { env: { NOTIFY_SOCKET: ns.address } });
    assertConfigRejected(r, ['capture.rate', 'capture.channels']);
    const status = await ns.waitFor((m) => 'STATUS' in m.fields, 5000, 'a STATUS= line');
    assert.match(status.fields.STATUS!, /^invalid configuration \(exit 2\): /);
    assert.match(status.fields.STATUS!, /capture\.rate: got 22050/);
    assert.match(status.fields.STATUS!, /capture\.channels: got 65/);
    assert.ok(!status.raw.includes('\n'), `one line: ${JSON.stringify(status.raw)}`);
  });

  test('the env override STAGEBOX_PORT=abc is refused naming the variable, the value and that a number is allowed', async () => {
    const r = await runCli(['--config', configFile({ capture: { device: 'test-signal' } })], { env: { STAGEBOX_PORT: 'abc' } });
    assertConfigRejected(r, ['STAGEBOX_PORT', 'abc', 'allowed', 'number']);
  });

  test('the env override STAGEBOX_PORT=70000 is refused naming server.port, the value and the bound', async () => {
    const r = await runCli(['--config', configFile({ capture: { device: 'test-signal' } })], { env: { STAGEBOX_PORT: '70000' } });
    assertConfigRejected(r, ['server.port', '70000', '65535']);
  });

  test('stream.heartbeatTimeoutMs not above stream.heartbeatIntervalMs is refused naming both keys', async () => {
    const r = await runCli(['--config', configFile({ stream: { heartbeatIntervalMs: 1000, heartbeatTimeoutMs: 800 } })]);
    assertConfigRejected(r, ['stream.heartbeatTimeoutMs', '800', 'stream.heartbeatIntervalMs']);
  });

  test('capture.retryMaxMs below capture.retryInitialMs is refused naming both keys', async () => {
    const r = await runCli(['--config', configFile({ capture: { retryInitialMs: 2000, retryMaxMs: 1000 } })]);
    assertConfigRejected(r, ['capture.retryMaxMs', '1000', 'capture.retryInitialMs']);
  });

  test('a wrongly typed value (server.port "80") is refused naming the key and the expected type', async () => {
    const r = await runCli(['--config', configFile({ server: { port: '80' } })]);
    assertConfigRejected(r, ['server.port', '"80"', 'number']);
  });

  test('an unknown capture.format is refused listing the allowed formats', async () => {
    const r = await runCli(['--config', configFile({ capture: { format: 'S8' } })]);
    assertConfigRejected(r, ['capture.format', 'S8', 'S16_LE', 'S24_3LE', 'S32_LE']);
  });

  test('an ALSA PCM name with capture.channels "auto" is refused: the channel count must be given', async () => {
    const r = await runCli(['--config', configFile({ capture: { device: 'sb_named_pcm', channels: 'auto', format: 'S16_LE' }, server: { host: '127.0.0.1', port: 0 } })], {
      stopWhen: LISTENING,
    });
    assertConfigRejected(r, ['capture.channels', 'auto']);
  });

  test('an ALSA PCM name with capture.format "auto" is refused: the contract says the format must be given explicitly', async () => {
    const r = await runCli(['--config', configFile({ capture: { device: 'sb_named_pcm', channels: 2, format: 'auto' }, server: { host: '127.0.0.1', port: 0 } })], {
      stopWhen: LISTENING,
    });
    assertConfigRejected(r, ['capture.format', 'auto']);
  });

  test('an unknown command-line option is refused with exit code 2 and names the option', async () => {
    const r = await runCli(['--no-such-option']);
    assert.equal(r.code, 2, show(r));
    assert.ok(r.stderr.includes('--no-such-option'), show(r));
  });

  test('mqtt.url with an http:// scheme is refused naming the key, the value and the allowed schemes', async () => {
    const r = await runCli(['--config', configFile({ capture: { device: 'test-signal' }, mqtt: { url: 'http://broker.local:1883' } })]);
    assertConfigRejected(r, ['mqtt.url', 'http://broker.local:1883', 'allowed', 'mqtt://', 'mqtts://', 'ws://', 'wss://']);
  });

  test('mqtt.url with a login in it is refused without echoing the password', async () => {
    const r = await runCli(['--config', configFile({ capture: { device: 'test-signal' }, mqtt: { url: 'mqtt://user:hunter2secret@broker.local' } })]);
    assertConfigRejected(r, ['mqtt.url', 'mqtt.credentialsFile']);
    assert.ok(!r.stderr.includes('hunter2secret'), show(r));
  });

  test('mqtt.healthIntervalS 0 is refused naming the key, the value and the lower bound 1', async () => {
    const r = await runCli(['--config', configFile({ capture: { device: 'test-signal' }, mqtt: { healthIntervalS: 0 } })]);
    assertConfigRejected(r, ['mqtt.healthIntervalS', '0', 'allowed', '>= 1']);
  });

  test('mqtt.deviceId with a "/" is refused naming the key and the characters allowed', async () => {
    const r = await runCli(['--config', configFile({ capture: { device: 'test-signal' }, mqtt: { deviceId: 'stage/left' } })]);
    assertConfigRejected(r, ['mqtt.deviceId', 'stage/left', 'allowed', 'a-z']);
  });

  test('mqtt.topicPrefix with "+", "#" or NUL is refused naming the key and the rule', async () => {
    for (const prefix of ['stage/+/box', 'stage#', 'stage\u0000box']) {
      const r = await runCli(['--config', configFile({ capture: { device: 'test-signal' }, mqtt: { topicPrefix: prefix } })]);
      assertConfigRejected(r, ['mqtt.topicPrefix', 'allowed', 'no "+", "#"']);
    }
  });

  test('mqtt.caFile naming a missing file is refused naming the key and the path', async () => {
    const missing = '/nonexistent-stagebox-dir/ca.pem';
    const r = await runCli(['--config', configFile({ capture: { device: 'test-signal' }, mqtt: { url: 'mqtts://127.0.0.1:1', caFile: missing } })]);
    assertConfigRejected(r, ['mqtt.caFile', missing]);
  });

  test('an mqtt.caFile that holds no PEM certificate is refused at load naming the key and the path, not its content', async () => {
    const garbage = writeTempFile('ca.pem', 'not-a-certificate-Qv93\n');
    const r = await runCli(['--config', configFile({ capture: { device: 'test-signal' }, mqtt: { url: 'mqtts://127.0.0.1:1', caFile: garbage } })]);
    assertConfigRejected(r, ['mqtt.caFile', garbage, 'no PEM certificate']);
    assert.ok(!r.stderr.includes('not-a-certificate-Qv93'), show(r));
  });

  test('an mqtt.caFile with a damaged certificate block is refused naming which certificate does not parse', async () => {
    const ca = selfSignedCert(mkdtempSync(path.join(os.tmpdir(), 'stagebox-badca-')));
    const pem = readFileSync(ca.certFile, 'utf8');
    const lines = pem.split('\n');
    lines[3] = lines[3].replace(/[A-Za-z]/g, 'A'); // breaks the DER inside, keeps the PEM frame
    const damaged = writeTempFile('ca.pem', pem + lines.join('\n'));
    const r = await runCli(['--config', configFile({ capture: { device: 'test-signal' }, mqtt: { url: 'mqtts://127.0.0.1:1', caFile: damaged } })]);
    assertConfigRejected(r, ['mqtt.caFile', damaged, 'certificate 2 of 2 does not parse']);
  });

  test('an mqtt.keyFile that is not the key of mqtt.certFile is refused naming both files', async () => {
    const a = selfSignedCert(mkdtempSync(path.join(os.tmpdir(), 'stagebox-cert-a-')));
    const b = selfSignedCert(mkdtempSync(path.join(os.tmpdir(), 'stagebox-cert-b-')));
    const r = await runCli(['--config', configFile({ capture: { device: 'test-signal' }, mqtt: { url: 'mqtts://127.0.0.1:1', certFile: a.certFile, keyFile: b.keyFile } })]);
    assertConfigRejected(r, ['mqtt.keyFile', b.keyFile, a.certFile, 'not the private key']);
  });

  test('an mqtt.keyFile that is not a key at all is refused naming the key and the path', async () => {
    const a = selfSignedCert(mkdtempSync(path.join(os.tmpdir(), 'stagebox-cert-c-')));
    const r = await runCli(['--config', configFile({ capture: { device: 'test-signal' }, mqtt: { url: 'mqtts://127.0.0.1:1', certFile: a.certFile, keyFile: a.certFile } })]);
    assertConfigRejected(r, ['mqtt.keyFile', a.certFile, 'not a usable private key']);
  });

  test('mqtt.credentialsFile naming a missing file is refused naming the key and the path', async () => {
    const missing = '/nonexistent-stagebox-dir/mqtt-credentials.json';
    const r = await runCli(['--config', configFile({ capture: { device: 'test-signal' }, mqtt: { url: 'mqtt://127.0.0.1:1', credentialsFile: missing } })]);
    assertConfigRejected(r, ['mqtt.credentialsFile', missing, 'allowed', 'readable file', 'ENOENT']);
  });

  test('a credentials file of the wrong shape is refused without showing its content', async () => {
    const creds = writeTempFile('creds.json', JSON.stringify({ user: 'x', password: 'do-not-show-this' }));
    const r = await runCli(['--config', configFile({ capture: { device: 'test-signal' }, mqtt: { url: 'mqtt://127.0.0.1:1', credentialsFile: creds } })]);
    assertConfigRejected(r, ['mqtt.credentialsFile', creds, 'username']);
    assert.ok(!r.stderr.includes('do-not-show-this'), show(r));
  });

  test('mqtt.certFile without mqtt.keyFile is refused naming both keys', async () => {
    const cert = writeTempFile('cert.pem', 'x');
    const r = await runCli(['--config', configFile({ capture: { device: 'test-signal' }, mqtt: { url: 'mqtts://127.0.0.1:1', certFile: cert } })]);
    assertConfigRejected(r, ['mqtt.keyFile', 'mqtt.certFile']);
  });
});

describe('informational commands exit 0', () => {
  test('--help prints the usage with every option and exits 0', async () => {
    const r = await runCli(['--help']);
    assert.equal(r.code, 0, show(r));
    assert.match(r.stdout, /usage/i, show(r));
    for (const opt of ['--config', '--print-config', '--help']) assert.ok(r.stdout.includes(opt), `usage should list ${opt}; ${show(r)}`);
  });

  test('--print-config prints the effective config as JSON with defaults filled in and exits 0', async () => {
    const file = configFile({ capture: { device: 'test-signal', channels: 4 }, stream: { helloTimeoutMs: 1234 } });
    const r = await runCli(['--config', file, '--print-config']);
    assert.equal(r.code, 0, show(r));
    let cfg: Record<string, Record<string, unknown>>;
    try {
      cfg = JSON.parse(r.stdout) as Record<string, Record<string, unknown>>;
    } catch (err) {
      assert.fail(`--print-config stdout is not one JSON document (${(err as Error).message}); ${show(r)}`);
    }
    // From the file:
    assert.equal(cfg.capture!.device, 'test-signal');
    assert.equal(cfg.capture!.channels, 4);
    assert.equal(cfg.stream!.helloTimeoutMs, 1234);
    // Defaults filled in:
    assert.equal(cfg.capture!.rate, 48000);
    assert.equal(cfg.capture!.periodFrames, 128);
    assert.equal(cfg.server!.port, 5100);
    assert.equal(cfg.stream!.maxClients, 256);
    assert.equal(cfg.stream!.maxPayloadBytes, 16384);
    assert.equal(cfg.log!.level, 'info');
    for (const section of ['capture', 'server', 'stream', 'pool', 'log']) assert.ok(cfg[section], `section ${section} missing from --print-config`);
  });

  test('--print-config applies STAGEBOX_* env overrides over the file', async () => {
    const file = configFile({ capture: { device: 'test-signal', channels: 4 }, server: { port: 6000 }, stream: { maxClients: 3 } });
    const r = await runCli(['--config', file, '--print-config'], {
      env: { STAGEBOX_PORT: '6123', STAGEBOX_MAX_CLIENTS: '9', STAGEBOX_CHANNELS: '6', STAGEBOX_LOG_LEVEL: 'warn' },
    });
    assert.equal(r.code, 0, show(r));
    const cfg = JSON.parse(r.stdout) as Record<string, Record<string, unknown>>;
    assert.equal(cfg.server!.port, 6123);
    assert.equal(cfg.stream!.maxClients, 9);
    assert.equal(cfg.capture!.channels, 6);
    assert.equal(cfg.log!.level, 'warn');
    assert.equal(cfg.capture!.device, 'test-signal', 'values without an override come from the file');
  });

  test('the admin token is never printed: --print-config masks it, an invalid one is refused without echoing it', async () => {
    const secret = 'pin-31337-from-file';
    const r = await runCli(['--config', configFile({ admin: { token: secret } }), '--print-config']);
    assert.equal(r.code, 0, show(r));
    assert.equal((JSON.parse(r.stdout) as { admin: { token: string } }).admin.token, '(set; not shown)');
    assert.ok(!r.stdout.includes(secret) && !r.stderr.includes(secret), show(r));
    const fromEnv = await runCli(['--print-config'], { env: { STAGEBOX_ADMIN_TOKEN: 'env-secret-4242' } });
    assert.equal(fromEnv.code, 0, show(fromEnv));
    assert.ok(!fromEnv.stdout.includes('env-secret-4242'), show(fromEnv));
    const unset = await runCli(['--print-config']);
    assert.equal((JSON.parse(unset.stdout) as { admin: { token: unknown } }).admin.token, null, 'an unset token prints as null');
    // Too short: the key and rule are named, the value is not.
    const bad = await runCli(['--config', configFile({ admin: { token: 'xyz' } })]);
    assertConfigRejected(bad, ['admin.token', 'at least 4 characters', 'not shown']);
    assert.ok(!/"xyz"/.test(bad.stderr), show(bad));
  });

  test('STAGEBOX_CONFIG names the config file when --config is not given', async () => {
    const file = configFile({ capture: { device: 'test-signal', channels: 2 }, stream: { helloTimeoutMs: 4321 } });
    const r = await runCli(['--print-config'], { env: { STAGEBOX_CONFIG: file } });
    assert.equal(r.code, 0, show(r));
    const cfg = JSON.parse(r.stdout) as Record<string, Record<string, unknown>>;
    assert.equal(cfg.stream!.helloTimeoutMs, 4321);
  });
});
