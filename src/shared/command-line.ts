import { readFileSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { NvcfError } from './errors.js';

/**
 * The one command-line convention every `nvcf-sidecar` command follows: `node:util` parseArgs
 * (so `--flag value` and `--flag=value` both work), `--help` and `--version` on each command,
 * and one set of exit codes, listed in docs/harness.md.
 */
export const EXIT = {
  ok: 0,
  /** The command ran and something failed: a request, the container, NATS. */
  failed: 1,
  /** Nothing ran: a bad flag, a missing argument, a bad variable or value, an unreadable input file. */
  badConfiguration: 2,
} as const;

/** A mistake in how the command was called; the command prints it with its usage and exits 2. */
export class UsageError extends NvcfError {
  override name = 'UsageError';
  /** The same command line fails the same way. */
  readonly retry = 'give-up';
}

type Options = NonNullable<ParseArgsConfig['options']>;

export interface Parsed<O extends Options> {
  values: ReturnType<typeof parseArgs<{ options: O; allowPositionals: true; strict: true }>>['values'];
  positionals: string[];
  help: boolean;
  version: boolean;
}

/**
 * Parses `args` against `options` (plus `--help`/`-h` and `--version`, which every command
 * takes). An unknown flag, a missing value, or a value given to a switch throws a UsageError
 * whose text names the flag.
 */
export function parseCommandArgs<O extends Options>(args: readonly string[], options: O): Parsed<O> {
  const withCommon = { ...options, help: { type: 'boolean', short: 'h' }, version: { type: 'boolean' } } as O;
  try {
    const { values, positionals } = parseArgs({
      args: [...args],
      options: withCommon,
      allowPositionals: true,
      strict: true,
    });
    const common = values as Record<string, unknown>;
    const help = Boolean(common.help);
    const version = Boolean(common.version);
    delete common.help;
    delete common.version;
    return { values, positionals, help, version };
  } catch (err) {
    throw new UsageError(plainParseError(err as Error));
  }
}

/**
 * What `--help` and `--version` do on every command: print the command's usage, or the package
 * version, and end it with exit 0. Undefined when neither was asked for.
 */
export function answerHelpOrVersion(parsed: { help: boolean; version: boolean }, usage: string): number | undefined {
  if (parsed.help) process.stdout.write(`${usage}\n`);
  else if (parsed.version) process.stdout.write(`${packageVersion()}\n`);
  else return undefined;
  return EXIT.ok;
}

/** node:util's messages mention parseArgs internals ("To specify a positional argument…"); keep the first sentence. */
function plainParseError(err: Error): string {
  const code = (err as { code?: string }).code;
  const first = err.message.split(/\.\s|\n/)[0]!.replace(/\.$/, '');
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') return first.replace(/^Unknown option '(.*)'$/, 'unknown option "$1"');
  if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE')
    return first
      .replace(/^Option '(?:-\w, )?(--[\w-]+) <value>' argument missing$/, '$1 needs a value')
      .replace(/^Option '(?:-\w, )?(--[\w-]+)' does not take an argument$/, '$1 takes no value');
  return first;
}

/** The package's version, read from package.json next to src/ (tsx) or dist/ (built). */
export function packageVersion(): string {
  const text = readFileSync(new URL('../../package.json', import.meta.url), 'utf8');
  return (JSON.parse(text) as { version: string }).version;
}
