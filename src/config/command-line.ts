import { parseArgs, type ParseArgsConfig } from 'node:util';

/** The command line broke a rule; the message names the option, the value and what is allowed. */
export class CommandLineError extends Error {
  override name = 'CommandLineError';
}

export interface CommandLineSpec<O extends NonNullable<ParseArgsConfig['options']>> {
  options: O;
  /** Positional arguments allowed (stagebox listen's url). */
  positionals: boolean;
  /** The options as the usage lists them, for "unknown option": "--config PATH, --help". */
  allowed: string;
  /** "allowed: …" for an option, for the message when its value is missing. */
  hint(name: string): string;
}

/**
 * Parses a command line with node:util's parseArgs (strict: every option
 * declared, types checked) and turns its errors into ours: the option, what
 * was wrong, and what is allowed.
 */
export function parseCommandLine<O extends NonNullable<ParseArgsConfig['options']>>(argv: string[], spec: CommandLineSpec<O>) {
  try {
    return parseArgs({ args: argv, options: spec.options, strict: true, allowPositionals: spec.positionals });
  } catch (err) {
    const e = err as Error & { code?: string };
    // parseArgs names the option ("Option '-h, --help' does not take an argument") or the argument in quotes.
    const quoted = /(--[\w-]+)/.exec(e.message)?.[1] ?? /'([^']+)'/.exec(e.message)?.[1] ?? '?';
    switch (e.code) {
      case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      case 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL':
        throw new CommandLineError(`unknown option ${JSON.stringify(quoted)}; allowed: ${spec.allowed}`);
      case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE': {
        const option = spec.options[quoted.replace(/^--/, '')];
        if (option?.type === 'boolean') throw new CommandLineError(`${quoted}: takes no value; allowed: ${quoted} alone`);
        throw new CommandLineError(`${quoted}: got no value; ${spec.hint(quoted)}`);
      }
      default:
        throw err;
    }
  }
}
