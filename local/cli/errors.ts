/**
 * Exit codes shared by `sd35` and `npm run generate` (docs/cli.md):
 * 0 ok; 1 the generation failed (or the run failed unexpectedly); 2 invalid input or usage;
 * 3 the API could not be used: unreachable, credentials refused, or an error on its side;
 * 130 interrupted (Ctrl-C, SIGTERM), as a shell reports a process SIGINT ended.
 */
export const EXIT = { ok: 0, failed: 1, usage: 2, api: 3, interrupted: 130 } as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** A failure the CLI reports as one line, with a stable `type` for `--json` and its exit code. */
export abstract class CliError extends Error {
  abstract readonly type: string;
  abstract readonly exitCode: ExitCode;
}

/** Bad flags, a missing argument, an unknown command: exit 2. */
export class UsageError extends CliError {
  override readonly name = 'UsageError';
  readonly type = 'usage';
  readonly exitCode = EXIT.usage;
}

/** A request (flags, a file, an id) that does not pass validation: exit 2. */
export class InvalidInputError extends CliError {
  override readonly name = 'InvalidInputError';
  readonly type = 'invalid_request';
  readonly exitCode = EXIT.usage;
}

/** The generation ended without images (failed, canceled, expired): exit 1. */
export class GenerationFailedError extends CliError {
  override readonly name = 'GenerationFailedError';
  readonly exitCode = EXIT.failed;
  constructor(
    readonly id: string,
    /** The generation's status: failed, canceled or expired. */
    readonly status: string,
    readonly type: string,
    message: string,
  ) {
    super(message);
  }
}

/** Ctrl-C or SIGTERM stopped the command before the end: exit 130; the message says what happens next. */
export class InterruptedError extends CliError {
  override readonly name = 'InterruptedError';
  readonly type = 'interrupted';
  readonly exitCode = EXIT.interrupted;
}

/** The API could not be reached, or answered with something that is not its API: exit 3. */
export class ApiUnreachableError extends CliError {
  override readonly name = 'ApiUnreachableError';
  readonly type = 'unreachable';
  readonly exitCode = EXIT.api;
}

/** The API answered 2xx with something that is not what its contract says: exit 3. */
export class UnexpectedAnswerError extends CliError {
  override readonly name = 'UnexpectedAnswerError';
  readonly type = 'unexpected_answer';
  readonly exitCode = EXIT.api;
}

/** Statuses that mean "your input is wrong" rather than "the API could not be used". */
const INPUT_STATUSES = new Set([400, 404, 409, 413, 415, 422]);

/**
 * The API answered with its error shape. A 400/404/409 is about the input (exit 2); 401/403 and
 * any other status mean the API could not be used (exit 3).
 */
export class ApiAnswerError extends CliError {
  override readonly name = 'ApiAnswerError';
  readonly exitCode: ExitCode;
  constructor(
    readonly status: number,
    readonly type: string,
    message: string,
  ) {
    super(message);
    this.exitCode = INPUT_STATUSES.has(status) ? EXIT.usage : EXIT.api;
  }
}

/** What to report for any error: a `CliError` as it is; anything else as an internal failure (exit 1). */
export function describeCliError(error: unknown): { type: string; message: string; exitCode: ExitCode } {
  if (error instanceof CliError)
    return { type: error.type, message: error.message, exitCode: error.exitCode };
  const message = error instanceof Error ? error.message : String(error);
  return { type: 'internal_error', message: oneLine(message), exitCode: EXIT.failed };
}

/** Collapses whitespace, so a multi-line cause stays one line of output. */
export function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}
