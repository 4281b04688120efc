import path from 'node:path';
import {
  createdGenerationSchema,
  GENERATION_SOURCE_HEADER,
  type GenerationView,
  generationListSchema,
  generationViewSchema,
} from '../../functions/api/schemas.js';
import { formatIssues, generationRequestSchema } from '../../functions/shared/generation-request.js';
import { generationIdSchema } from '../../functions/shared/workflow-state.js';
import { REQUEST_FLAG_OPTIONS, REQUEST_FLAGS_HELP, requestFromFlags } from '../request-flags.js';
import { type ApiClient, type ApiEnv, baseUrlOf, createApiClient, resolveApiTarget } from './api-client.js';
import { parseFlags, positionalsOf, wantsJson } from './args.js';
import { downloadImages, followGeneration, generationFailureDocument } from './download.js';
import { EXIT, type ExitCode, InvalidInputError, UsageError } from './errors.js';
import { type CliIo, type CommandOutcome, errorDocument, type FailureDocument, runCommand } from './run.js';
import { PROJECT_ROOT, packageVersion } from './version.js';

/** Where `generate` and `download` write images unless `--out` says otherwise: git-ignored. */
export const DEFAULT_OUT_DIR = path.join(PROJECT_ROOT, '.local', 'generations');

/** What the `sd35` CLI works with; everything but `io` and `env` has a default. */
export interface Sd35Deps {
  readonly io: CliIo;
  readonly env: ApiEnv;
  readonly fetch?: typeof fetch;
  /** Opens a URL in a browser. @default the platform's opener */
  readonly openUrl?: (url: string) => Promise<void>;
  /** Between polls while a generation runs. @default 1000 */
  readonly pollIntervalMs?: number;
}

const API_FLAGS = {
  api: { type: 'string' },
  auth: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

const API_HELP = `  --api <url>            API base URL, stage included    [default $SD35_API_URL or http://127.0.0.1:3000]
  --auth <mode>          iam | bearer | none               [default $SD35_AUTH, else iam for *.amazonaws.com,
                                                            bearer when a token is set, else none]
  --json                 print exactly one JSON document on stdout
  -h, --help             this text`;

const ENV_HELP = `Environment: SD35_API_URL, SD35_AUTH, SD35_API_TOKEN (or API_TOKEN) for bearer auth; for IAM the
standard AWS credential chain (AWS_PROFILE, AWS_ACCESS_KEY_ID, …) and AWS_REGION when the URL has no region.
Exit codes: 0 ok, 1 the generation failed, 2 invalid input or usage, 3 the API could not be used
(unreachable, credentials refused, or an error on its side). See docs/cli.md.`;

const OUT_HELP = `  --out <dir>            where to write the images, in <dir>/<id>/  [default .local/generations]`;

interface Command {
  readonly usage: string;
  readonly options: Parameters<typeof parseFlags>[1];
  /** Names of the positional arguments, `[X]` when optional; `undefined`: any number (the prompt). */
  readonly positionals?: readonly string[];
  readonly failureDocument?: FailureDocument;
  run(
    values: Record<string, string | boolean | undefined>,
    positionals: readonly (string | undefined)[],
    deps: Sd35Deps,
  ): Promise<CommandOutcome>;
}

const COMMANDS: Record<string, Command> = {
  generate: {
    usage: `Usage: sd35 generate "<prompt>" [options]

Creates a generation through the HTTP API, shows its progress on stderr, and downloads the images.

Options:
${REQUEST_FLAGS_HELP}
  --idempotency-key <k>  send as Idempotency-Key: the same key and request give the same generation
${OUT_HELP}
${API_HELP}`,
    options: {
      ...REQUEST_FLAG_OPTIONS,
      out: { type: 'string' },
      'idempotency-key': { type: 'string' },
      ...API_FLAGS,
    },
    failureDocument: generationFailureDocument,
    async run(values, prompt, deps) {
      const api = apiClient(values, deps);
      const body = requestFromFlags(values as Record<string, string | undefined>, prompt as string[]);
      const request = generationRequestSchema.safeParse(body);
      if (!request.success) throw new InvalidInputError(`invalid request: ${formatIssues(request.error)}`);
      const key = values['idempotency-key'] as string | undefined;
      const { parsed: created } = await api.send(
        {
          method: 'POST',
          path: '/v1/generations',
          // The raw body, not the parsed one: the API fills in its own defaults (its default model).
          body,
          // Recorded as the generation's source: made by the CLI, not by some other client.
          headers: { [GENERATION_SOURCE_HEADER]: 'cli', ...(key ? { 'idempotency-key': key } : {}) },
        },
        createdGenerationSchema,
      );
      if (!values.json) deps.io.stderr(`generation ${created.id} created at ${api.baseUrl}\n`);
      return downloadOutcome(api, created.id, values, deps);
    },
  },
  get: {
    usage: `Usage: sd35 get <ID> [options]

Shows a generation. With --json, prints the API's own answer to GET /v1/generations/{id}.

Options:
${API_HELP}`,
    options: API_FLAGS,
    positionals: ['ID'],
    async run(values, [id], deps) {
      const { raw, parsed } = await apiClient(values, deps).send(
        { method: 'GET', path: `/v1/generations/${generationId(id)}` },
        generationViewSchema,
      );
      if (!values.json) deps.io.stdout(describeGeneration(parsed));
      return { exitCode: EXIT.ok, document: raw };
    },
  },
  list: {
    usage: `Usage: sd35 list [options]

Lists generations, newest first. With --json, prints the API's own answer to GET /v1/generations.

Options:
  --status <status>      queued | running | succeeded | failed | canceled | expired
  --limit <1-50>         generations per page                     [default 20]
  --cursor <cursor>      the next page (nextCursor of the previous one)
${API_HELP}`,
    options: {
      status: { type: 'string' },
      limit: { type: 'string' },
      cursor: { type: 'string' },
      ...API_FLAGS,
    },
    positionals: [],
    async run(values, _positionals, deps) {
      const { raw, parsed } = await apiClient(values, deps).send(
        {
          method: 'GET',
          path: '/v1/generations',
          query: {
            status: values.status as string | undefined,
            limit: values.limit as string | undefined,
            cursor: values.cursor as string | undefined,
          },
        },
        generationListSchema,
      );
      if (!values.json) {
        for (const view of parsed.data)
          deps.io.stdout(
            `${view.id}  ${view.status.padEnd(9)}  ${view.progress.done}/${view.progress.total} images  ${view.createdAt}\n`,
          );
        if (parsed.data.length === 0) deps.io.stdout('no generations\n');
        if (parsed.nextCursor) deps.io.stdout(`more: sd35 list --cursor ${parsed.nextCursor}\n`);
      }
      return { exitCode: EXIT.ok, document: raw };
    },
  },
  cancel: {
    usage: `Usage: sd35 cancel <ID> [options]

Cancels a generation (harmless when it has ended). With --json, prints the API's answer.

Options:
${API_HELP}`,
    options: API_FLAGS,
    positionals: ['ID'],
    async run(values, [id], deps) {
      const { raw, parsed } = await apiClient(values, deps).send(
        { method: 'POST', path: `/v1/generations/${generationId(id)}/cancel` },
        generationViewSchema,
      );
      if (!values.json) deps.io.stdout(`generation ${parsed.id}: ${parsed.status}\n`);
      return { exitCode: EXIT.ok, document: raw };
    },
  },
  download: {
    usage: `Usage: sd35 download <ID> [options]

Waits for a generation to end, then writes its images into <out>/<ID>/ and prints their paths.

Options:
${OUT_HELP}
${API_HELP}`,
    options: { out: { type: 'string' }, ...API_FLAGS },
    positionals: ['ID'],
    failureDocument: generationFailureDocument,
    async run(values, [id], deps) {
      return downloadOutcome(apiClient(values, deps), generationId(id), values, deps);
    },
  },
  open: {
    usage: `Usage: sd35 open [ID] [options]

Opens the web console (a generation's page with an ID) in the browser, and prints its URL.

Options:
  --api <url>            API base URL, stage included    [default $SD35_API_URL or http://127.0.0.1:3000]
  --json                 print exactly one JSON document on stdout: {"url": …}
  -h, --help             this text`,
    options: { api: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    positionals: ['[ID]'],
    async run(values, [id], deps) {
      const base = baseUrlOf(values.api as string | undefined, deps.env);
      const url = `${base}/console/${id === undefined ? '' : `generations/${generationId(id)}`}`;
      if (!values.json) deps.io.stdout(`${url}\n`);
      try {
        await (deps.openUrl ?? (await import('./open-url.js')).openInBrowser)(url);
      } catch (error) {
        deps.io.stderr(
          `warning: could not open a browser (${(error as Error).message}); open the URL yourself\n`,
        );
      }
      return { exitCode: EXIT.ok, document: { url } };
    },
  },
};

const USAGE = `Usage: sd35 <command> [options]

Commands:
  generate "<prompt>"    create a generation, follow it, download its images
  get <ID>               show a generation
  list                   list generations, newest first
  cancel <ID>            cancel a generation
  download <ID>          write a generation's images into a folder
  open [ID]              open the web console (at a generation) in the browser

Every command takes --help and --json.   sd35 --version prints the version.

${ENV_HELP}`;

/**
 * The `sd35` CLI: a client of the HTTP API (the local `npm start` server or a deployed stack).
 * Under `--json`, prints exactly one JSON document on stdout whatever happens.
 *
 * @returns the exit code: 0 ok, 1 the generation failed, 2 invalid input or usage, 3 the API could not be used
 */
export async function sd35(argv: readonly string[], deps: Sd35Deps): Promise<ExitCode> {
  const json = wantsJson(argv);
  const [name, ...rest] = argv;
  const command = name === undefined ? undefined : COMMANDS[name];
  return runCommand(
    deps.io,
    json,
    async () => {
      if (name === '--version' || name === '-v') {
        const version = packageVersion();
        if (!json) deps.io.stdout(`${version}\n`);
        return { exitCode: EXIT.ok, document: { version } };
      }
      if (name === '--help' || name === '-h') {
        if (!json) deps.io.stdout(`${USAGE}\n`);
        return { exitCode: EXIT.ok, document: { usage: USAGE } };
      }
      if (name === undefined || name === '--json')
        throw new UsageError(
          'missing command: generate, get, list, cancel, download or open (see sd35 --help)',
        );
      if (!command) throw new UsageError(`${JSON.stringify(name)}: unknown command (see sd35 --help)`);
      const hint = `sd35 ${name} --help`;
      const { values, positionals } = parseFlags(rest, command.options, hint);
      if (values.help) {
        if (!json) deps.io.stdout(`${command.usage}\n\n${ENV_HELP}\n`);
        return { exitCode: EXIT.ok, document: { usage: command.usage } };
      }
      return command.run(
        values as Record<string, string | boolean | undefined>,
        command.positionals ? positionalsOf(positionals, command.positionals, hint) : positionals,
        deps,
      );
    },
    command?.failureDocument ?? errorDocument,
  );
}

function apiClient(values: Record<string, unknown>, deps: Sd35Deps): ApiClient {
  const target = resolveApiTarget(
    { api: values.api as string | undefined, auth: values.auth as string | undefined },
    deps.env,
  );
  return createApiClient(target, deps.fetch);
}

/** @throws InvalidInputError for an id the API cannot have issued */
function generationId(id: string | undefined): string {
  const parsed = generationIdSchema.safeParse(id);
  if (!parsed.success) throw new InvalidInputError(`ID: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
  return parsed.data;
}

async function downloadOutcome(
  api: ApiClient,
  id: string,
  values: Record<string, unknown>,
  deps: Sd35Deps,
): Promise<CommandOutcome> {
  const quiet = values.json === true;
  const view = await followGeneration(api, id, { io: deps.io, quiet, pollIntervalMs: deps.pollIntervalMs });
  const outDir = path.resolve((values.out as string | undefined) ?? DEFAULT_OUT_DIR);
  const document = await downloadImages(view, outDir, { io: deps.io, quiet, fetch: deps.fetch });
  return { exitCode: EXIT.ok, document };
}

function describeGeneration(view: GenerationView): string {
  const lines = [
    `${view.id}: ${view.status} · ${view.progress.done}/${view.progress.total} images · created ${view.createdAt}${view.endedAt ? ` · ended ${view.endedAt}` : ''}`,
  ];
  if (view.request)
    lines.push(
      `  ${view.request.n} × ${view.request.size} with ${view.request.model}: ${view.request.prompt}`,
    );
  for (const image of view.images ?? [])
    lines.push(`  image ${image.index}: ${image.key} (${image.bytes} bytes, seed ${image.seed})`);
  for (const failure of view.failedImages ?? [])
    lines.push(`  image ${failure.index} not stored: ${failure.type}: ${failure.message}`);
  if (view.error) lines.push(`  error: ${view.error.type}: ${view.error.message}`);
  return `${lines.join('\n')}\n`;
}
