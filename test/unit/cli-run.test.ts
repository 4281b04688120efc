import { describe, expect, it } from 'vitest';
import { ApiAnswerError, EXIT, GenerationFailedError, UsageError } from '../../local/cli/errors.js';
import { type CliIo, runCommand } from '../../local/cli/run.js';

function capture(): CliIo & { out: string; err: string } {
  const io = {
    out: '',
    err: '',
    stdout: (text: string) => {
      io.out += text;
    },
    stderr: (text: string) => {
      io.err += text;
    },
  };
  return io;
}

function documents(stdout: string): unknown[] {
  return stdout
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line));
}

describe('runCommand', () => {
  it('prints the command document once under --json', async () => {
    const io = capture();

    const code = await runCommand(io, true, async () => ({ exitCode: EXIT.ok, document: { id: 'x' } }));

    expect(code).toBe(0);
    expect(documents(io.out)).toEqual([{ id: 'x' }]);
  });

  it('prints one error document and exits 2 for a usage error', async () => {
    const io = capture();

    const code = await runCommand(io, true, async () => {
      throw new UsageError('--foo: unknown option (see x --help)');
    });

    expect(code).toBe(2);
    expect(documents(io.out)).toEqual([
      { error: { type: 'usage', message: '--foo: unknown option (see x --help)' } },
    ]);
    expect(io.err).toBe('error: --foo: unknown option (see x --help)\n');
  });

  it('prints one error document and exits 1 for a crash', async () => {
    const io = capture();

    const code = await runCommand(io, true, async () => {
      throw new TypeError('boom\n  at somewhere');
    });

    expect(code).toBe(1);
    expect(documents(io.out)).toEqual([{ error: { type: 'internal_error', message: 'boom at somewhere' } }]);
  });

  it('lets a command give failures its own document shape', async () => {
    const io = capture();

    await runCommand(
      io,
      true,
      async () => {
        throw new GenerationFailedError('gen-1', 'failed', 'content_policy', 'generation gen-1 failed: no');
      },
      (error, cause) => ({ id: (cause as GenerationFailedError).id, error }),
    );

    expect(documents(io.out)).toEqual([
      { id: 'gen-1', error: { type: 'content_policy', message: 'generation gen-1 failed: no' } },
    ]);
  });

  it('prints nothing on stdout for an error without --json', async () => {
    const io = capture();

    await runCommand(io, false, async () => {
      throw new UsageError('bad');
    });

    expect(io.out).toBe('');
  });
});

describe('exit codes of API answers', () => {
  it('exits 2 for an answer about the input (400, 404, 409)', () => {
    expect([400, 404, 409].map((status) => new ApiAnswerError(status, 't', 'm').exitCode)).toEqual([2, 2, 2]);
  });

  it('exits 3 when the API cannot be used (401, 403, 500, 503)', () => {
    expect([401, 403, 500, 503].map((status) => new ApiAnswerError(status, 't', 'm').exitCode)).toEqual([
      3, 3, 3, 3,
    ]);
  });
});
