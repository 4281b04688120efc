import { describeCliError, EXIT, type ExitCode } from './errors.js';

/** Where a command writes: text and the one JSON document to stdout, progress and errors to stderr. */
export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
  /** Whether stderr is a terminal (progress is then rewritten in place). */
  readonly stderrIsTTY?: boolean;
}

/** What a command ends with: its exit code and, under `--json`, the document to print. */
export interface CommandOutcome {
  readonly exitCode: ExitCode;
  readonly document: unknown;
}

/** The `--json` document for an error, given the error and its type and message. */
export type FailureDocument = (described: { type: string; message: string }, error: unknown) => unknown;

/** `{ error: { type, message } }`: the document of every failure but a generation's. */
export const errorDocument: FailureDocument = (error) => ({ error });

/**
 * Runs a command and reports how it ended: with `json`, exactly one JSON document on stdout, whether
 * the command succeeded, was misused or threw; every error also as one `error: …` line on stderr.
 *
 * @returns the exit code (never throws)
 */
export async function runCommand(
  io: CliIo,
  json: boolean,
  command: () => Promise<CommandOutcome>,
  failureDocument: FailureDocument = errorDocument,
): Promise<ExitCode> {
  const once = jsonOnce(io);
  try {
    const outcome = await command();
    if (json) once(outcome.document);
    return outcome.exitCode;
  } catch (error) {
    const { type, message, exitCode } = describeCliError(error);
    io.stderr(`error: ${message}\n`);
    if (json) once(failureDocument({ type, message }, error));
    return exitCode;
  }
}

/**
 * Runs a CLI as this process: gives `main` the process's streams, sets the exit code it returns,
 * and turns a crash outside `main`'s own promise (an uncaught exception from a server it started)
 * into exit 1, still with one JSON document under `--json` if none was printed yet.
 */
export async function runAsProcess(
  json: boolean,
  main: (io: CliIo) => Promise<ExitCode>,
  failureDocument: FailureDocument = errorDocument,
): Promise<void> {
  let stdoutWritten = false;
  const io: CliIo = {
    stdout: (text) => {
      stdoutWritten = true;
      process.stdout.write(text);
    },
    stderr: (text) => {
      process.stderr.write(text);
    },
    stderrIsTTY: process.stderr.isTTY,
  };
  const crash = (error: unknown) => {
    const { type, message } = describeCliError(error);
    io.stderr(`error: ${message}\n`);
    if (json && !stdoutWritten) io.stdout(`${JSON.stringify(failureDocument({ type, message }, error))}\n`);
    process.exit(EXIT.failed);
  };
  process.once('uncaughtException', crash);
  process.once('unhandledRejection', crash);
  process.exitCode = await main(io);
}

function jsonOnce(io: CliIo): (document: unknown) => void {
  let written = false;
  return (document) => {
    if (written) return;
    written = true;
    io.stdout(`${JSON.stringify(document)}\n`);
  };
}
