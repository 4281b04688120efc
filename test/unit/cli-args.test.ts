import { describe, expect, it } from 'vitest';
import { parseFlags, positionalsOf, wantsJson } from '../../local/cli/args.js';
import { UsageError } from '../../local/cli/errors.js';

const options = {
  seed: { type: 'string' },
  negative: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;
const hint = 'sd35 generate --help';

function usageErrorOf(argv: string[]): UsageError {
  try {
    parseFlags(argv, options, hint);
  } catch (error) {
    if (error instanceof UsageError) return error;
    throw error;
  }
  throw new Error('parseFlags did not throw');
}

describe('parseFlags', () => {
  it('names an unknown flag in one line and points to --help', () => {
    expect(usageErrorOf(['cat', '--foo']).message).toBe('--foo: unknown option (see sd35 generate --help)');
  });

  it('takes a negative number after a string flag as its value', () => {
    expect(parseFlags(['cat', '--seed', '-1'], options, hint).values.seed).toBe('-1');
  });

  it('says a string flag at the end needs a value', () => {
    expect(usageErrorOf(['cat', '--seed']).message).toBe('--seed: needs a value (see sd35 generate --help)');
  });

  it('says how to pass a value that starts with a dash', () => {
    expect(usageErrorOf(['cat', '--negative', '-blurry']).message).toBe(
      '--negative: needs a value; for a value that starts with "-", write --negative=-blurry (see sd35 generate --help)',
    );
  });

  it('says a switch takes no value', () => {
    expect(usageErrorOf(['cat', '--json=yes']).message).toBe(
      '--json: takes no value (see sd35 generate --help)',
    );
  });

  it('keeps every message on one line without quotes around the flag', () => {
    for (const argv of [['--foo'], ['--seed'], ['-x'], ['--json=1']]) {
      const { message } = usageErrorOf(argv);
      expect(message).not.toMatch(/\n|'/);
    }
  });
});

describe('wantsJson', () => {
  it('finds --json before parsing, so a parse error can still answer in JSON', () => {
    expect(wantsJson(['cat', '--foo', '--json'])).toBe(true);
  });

  it('ignores --json after the -- terminator', () => {
    expect(wantsJson(['--', '--json'])).toBe(false);
  });
});

describe('positionalsOf', () => {
  it('names a missing required argument', () => {
    expect(() => positionalsOf([], ['ID'], 'sd35 get --help')).toThrow('ID: missing (see sd35 get --help)');
  });

  it('names an extra argument', () => {
    expect(() => positionalsOf(['a', 'b'], ['ID'], 'sd35 get --help')).toThrow(
      '"b": unexpected argument (see sd35 get --help)',
    );
  });

  it('leaves an optional argument undefined', () => {
    expect(positionalsOf([], ['[ID]'], 'sd35 open --help')).toEqual([undefined]);
  });
});
