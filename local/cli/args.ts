import { type ParseArgsConfig, parseArgs } from 'node:util';
import { UsageError } from './errors.js';

type Options = NonNullable<ParseArgsConfig['options']>;

/**
 * `parseArgs` with one-line errors: each names the flag and the reason and points to `helpHint`
 * (e.g. `sd35 generate --help`), instead of Node's multi-line messages. A negative number after a
 * string flag (`--seed -1`) is taken as its value, so the request schema can say what is wrong with it.
 *
 * @throws UsageError for an unknown flag, a flag without its value, or a value given to a switch.
 */
export function parseFlags<const O extends Options>(argv: readonly string[], options: O, helpHint: string) {
  const args = joinNegativeValues(argv, options);
  const { tokens } = parseArgs({ args, options, allowPositionals: true, strict: false, tokens: true });
  for (const token of tokens) {
    if (token.kind !== 'option') continue;
    const option = options[token.name];
    const reason =
      option === undefined
        ? 'unknown option'
        : option.type === 'string' && token.value === undefined
          ? 'needs a value'
          : option.type === 'string' && token.inlineValue === false && token.value?.startsWith('-')
            ? `needs a value; for a value that starts with "-", write ${token.rawName}=${token.value}`
            : option.type === 'boolean' && token.value !== undefined
              ? 'takes no value'
              : undefined;
    if (reason) throw new UsageError(`${token.rawName}: ${reason} (see ${helpHint})`);
  }
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError(`${(error as Error).message.split('\n')[0]} (see ${helpHint})`, { cause: error });
  }
}

/** Whether `--json` was asked for, read before parsing so that a parse error still answers in JSON. */
export function wantsJson(argv: readonly string[]): boolean {
  const end = argv.indexOf('--');
  return (end === -1 ? argv : argv.slice(0, end)).includes('--json');
}

/**
 * The positional arguments a command takes, by name: `[ID]` optional, `ID` required.
 *
 * @throws UsageError when one is missing or there are too many.
 */
export function positionalsOf(
  positionals: readonly string[],
  names: readonly string[],
  helpHint: string,
): (string | undefined)[] {
  const required = names.filter((name) => !name.startsWith('['));
  if (positionals.length < required.length)
    throw new UsageError(`${required[positionals.length]}: missing (see ${helpHint})`);
  if (positionals.length > names.length)
    throw new UsageError(
      `${JSON.stringify(positionals[names.length])}: unexpected argument (see ${helpHint})`,
    );
  return names.map((_, i) => positionals[i]);
}

function joinNegativeValues(argv: readonly string[], options: Options): string[] {
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const next = argv[i + 1];
    if (arg === '--') {
      args.push(...argv.slice(i));
      break;
    }
    if (
      arg.startsWith('--') &&
      options[arg.slice(2)]?.type === 'string' &&
      next !== undefined &&
      /^-(\d|\.\d)/.test(next)
    ) {
      args.push(`${arg}=${next}`);
      i++;
    } else {
      args.push(arg);
    }
  }
  return args;
}
