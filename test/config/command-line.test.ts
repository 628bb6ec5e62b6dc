import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CommandLineError, parseCommandLine } from '../../src/config/command-line';
import { parseListenArgs, UsageError } from '../../src/listen/listen-args';

const SPEC = {
  options: { config: { type: 'string' as const }, version: { type: 'boolean' as const }, help: { type: 'boolean' as const, short: 'h' } },
  positionals: false,
  allowed: '--config PATH, --version, --help',
  hint: (name: string) => (name === '--config' ? 'allowed: a file path' : 'a value is needed'),
};

function refusal(argv: string[]): string {
  try {
    parseCommandLine(argv, SPEC);
  } catch (err) {
    assert.ok(err instanceof CommandLineError, `${(err as Error).name}: ${(err as Error).message}`);
    return err.message;
  }
  return 'accepted';
}

describe('command lines (node:util parseArgs, our messages)', () => {
  test('options in every form parse', () => {
    assert.deepEqual({ ...parseCommandLine(['--config', '/etc/x.json', '-h'], SPEC).values }, { config: '/etc/x.json', help: true });
    assert.deepEqual({ ...parseCommandLine(['--config=/tmp/a', '--version'], SPEC).values }, { config: '/tmp/a', version: true });
  });

  for (const [what, argv, message] of [
    ['an unknown option', ['--verbose'], 'unknown option "--verbose"; allowed: --config PATH, --version, --help'],
    ['a stray argument', ['extra'], 'unknown option "extra"; allowed: --config PATH, --version, --help'],
    ['an option missing its value', ['--config'], '--config: got no value; allowed: a file path'],
    ['an option whose value looks like another option', ['--config', '--version'], '--config: got no value; allowed: a file path'],
    ['a value for a flag', ['--version=yes'], '--version: takes no value; allowed: --version alone'],
  ] as const) {
    test(`${what} is refused naming it and what is allowed`, () => {
      assert.equal(refusal([...argv]), message);
    });
  }
});

describe('stagebox listen arguments', () => {
  function listenRefusal(argv: string[]): string {
    try {
      parseListenArgs(argv);
    } catch (err) {
      assert.ok(err instanceof UsageError);
      return err.message;
    }
    return 'accepted';
  }

  test('a full command line', () => {
    const o = parseListenArgs(['ws://box:5100/', '--channels', '1-4,7', '--codec=pcm24', '--seconds', '2.5', '--out', 'a.wav', '--client-id', 'cli-1', '--target-ms', '8']);
    assert.deepEqual(o.channels, [1, 2, 3, 4, 7], 'inputs as numbered on the interface');
    assert.equal(o.codec, 'pcm24');
    assert.equal(o.seconds, 2.5);
    assert.equal(o.out, 'a.wav');
    assert.equal(o.clientId, 'cli-1');
    assert.equal(o.targetMs, 8);
    assert.equal(o.url, 'ws://box:5100/');
  });

  for (const [what, argv, message] of [
    ['--out without its file', ['ws://b/', '--out'], '--out: got no value; allowed: a file path such as take1.wav'],
    ['--help with a value', ['--help=1'], '--help: takes no value; allowed: --help alone'],
    ['two urls', ['ws://a/', 'ws://b/', '--out', 'x.wav'], '2 urls given ("ws://a/", "ws://b/"); allowed: one'],
    ['no url', ['--out', 'x.wav'], 'no url given; allowed: one ws:// URL such as ws://stagebox.local:5100/'],
    ['a bad client id', ['ws://b/', '--out', 'x.wav', '--client-id', 'a b'], '--client-id "a b": allowed: 1-64 characters from A-Z a-z 0-9 . _ : -'],
    ['--target-ms out of range', ['ws://b/', '--out', 'x.wav', '--target-ms', '1'], '--target-ms "1": allowed: 2.5-200 ms'],
  ] as const) {
    test(`${what} is refused`, () => {
      assert.equal(listenRefusal([...argv]), message);
    });
  }
});
