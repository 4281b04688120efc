import path from 'node:path';
import { type ApiClient, type ApiEnv, createApiClient, resolveApiTarget } from './api-client.js';
import type { parseFlags } from './args.js';
import type { CliIo, CommandOutcome, FailureDocument } from './run.js';
import { PROJECT_ROOT } from './version.js';

/** Where `generate` and `download` write images unless `--out` says otherwise: git-ignored. */
export const DEFAULT_OUT_DIR = path.join(PROJECT_ROOT, '.local', 'generations');

/** What the `sd35` CLI works with; everything but `io` and `env` has a default. */
export interface Sd35Deps {
  readonly io: CliIo;
  readonly env: ApiEnv;
  readonly fetch?: typeof fetch;
  /** Opens a URL in a browser. @default the platform's opener */
  readonly openUrl?: (url: string) => Promise<void>;
  /** Between polls while a generation runs. @default 1000 (a batch: 2000) */
  readonly pollIntervalMs?: number;
  /** The time, for the batch progress's rate and ETA. @default Date.now */
  readonly now?: () => number;
}

/** A command's flags as parsed: a repeatable flag gives a list. */
export type FlagValues = Record<string, string | boolean | string[] | undefined>;

/** One `sd35` command: its help, its flags and positional arguments, and what it does. */
export interface Command {
  readonly usage: string;
  readonly options: Parameters<typeof parseFlags>[1];
  /** Names of the positional arguments, `[X]` when optional; `undefined`: any number (the prompt). */
  readonly positionals?: readonly string[];
  readonly failureDocument?: FailureDocument;
  run(
    values: FlagValues,
    positionals: readonly (string | undefined)[],
    deps: Sd35Deps,
  ): Promise<CommandOutcome>;
}

/** The flags of every command that calls the API. */
export const API_FLAGS = {
  api: { type: 'string' },
  auth: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export const API_HELP = `  --api <url>            API base URL, stage included    [default $SD35_API_URL or http://127.0.0.1:3000]
  --auth <mode>          iam | bearer | none               [default $SD35_AUTH, else iam for *.amazonaws.com,
                                                            bearer when a token is set, else none]
  --json                 print exactly one JSON document on stdout
  -h, --help             this text`;

export const ENV_HELP = `Environment: SD35_API_URL, SD35_AUTH, SD35_API_TOKEN (or API_TOKEN) for bearer auth; for IAM the
standard AWS credential chain (AWS_PROFILE, AWS_ACCESS_KEY_ID, …) and AWS_REGION when the URL has no region.
Exit codes: 0 ok, 1 the generation failed (a batch: a line failed or was canceled), 2 invalid input or usage
(a batch: a line was rejected), 3 the API could not be used (unreachable, credentials refused, or an error
on its side). See docs/cli.md.`;

export const OUT_HELP = `  --out <dir>            where to write the images, in <dir>/<id>/  [default .local/generations]`;

/** The API client the flags and the environment name. */
export function apiClient(values: FlagValues, deps: Sd35Deps): ApiClient {
  const target = resolveApiTarget(
    { api: values.api as string | undefined, auth: values.auth as string | undefined },
    deps.env,
  );
  return createApiClient(target, deps.fetch);
}
