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
import { type ApiClient, baseUrlOf } from './api-client.js';
import { parseFlags, positionalsOf, wantsJson } from './args.js';
import { BATCH_COMMANDS, BATCH_USAGE } from './batch-commands.js';
import {
  API_FLAGS,
  API_HELP,
  apiClient,
  type Command,
  DEFAULT_OUT_DIR,
  ENV_HELP,
  type FlagValues,
  OUT_HELP,
  type Sd35Deps,
} from './command.js';
import { downloadImages, followGeneration, generationFailureDocument } from './download.js';
import { EXIT, type ExitCode, InvalidInputError, UsageError } from './errors.js';
import { type CommandOutcome, errorDocument, runCommand } from './run.js';
import { packageVersion } from './version.js';

export { DEFAULT_OUT_DIR, type Sd35Deps } from './command.js';

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
  batch <command>        send a file of requests as one batch, follow it, cancel it, get its results:
                         create, get, list, cancel, results (see sd35 batch --help)

Every command takes --help and --json.   sd35 --version prints the version.

${ENV_HELP}`;

/**
 * The `sd35` CLI: a client of the HTTP API (the local `npm start` server or a deployed stack).
 * Under `--json`, prints exactly one JSON document on stdout whatever happens.
 *
 * @returns the exit code: 0 ok, 1 the generation (a line of the batch) failed, 2 invalid input or usage (a
 *   line of the batch rejected), 3 the API could not be used
 */
export async function sd35(argv: readonly string[], deps: Sd35Deps): Promise<ExitCode> {
  const json = wantsJson(argv);
  const [name, ...rest] = argv;
  const [sub, ...subRest] = rest;
  // Own keys only: `sd35 toString` is an unknown command, not Object.prototype's.
  const own = (commands: Record<string, Command>, key: string | undefined) =>
    key !== undefined && Object.hasOwn(commands, key) ? commands[key] : undefined;
  const command = name === 'batch' ? own(BATCH_COMMANDS, sub) : own(COMMANDS, name);
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
          'missing command: generate, get, list, cancel, download, open or batch (see sd35 --help)',
        );
      if (name === 'batch') {
        if (sub === '--help' || sub === '-h') {
          if (!json) deps.io.stdout(`${BATCH_USAGE}\n\n${ENV_HELP}\n`);
          return { exitCode: EXIT.ok, document: { usage: BATCH_USAGE } };
        }
        if (sub === undefined || sub.startsWith('-'))
          throw new UsageError(
            'missing batch command: create, get, list, cancel or results (see sd35 batch --help)',
          );
        if (!command)
          throw new UsageError(`${JSON.stringify(sub)}: unknown batch command (see sd35 batch --help)`);
        return runParsed(command, `sd35 batch ${sub} --help`, subRest, json, deps);
      }
      if (!command) throw new UsageError(`${JSON.stringify(name)}: unknown command (see sd35 --help)`);
      return runParsed(command, `sd35 ${name} --help`, rest, json, deps);
    },
    command?.failureDocument ?? errorDocument,
  );
}

/** Parses a command's flags and arguments, then answers --help or runs it. */
async function runParsed(
  command: Command,
  hint: string,
  args: readonly string[],
  json: boolean,
  deps: Sd35Deps,
): Promise<CommandOutcome> {
  const { values, positionals } = parseFlags(args, command.options, hint);
  if (values.help) {
    if (!json) deps.io.stdout(`${command.usage}\n\n${ENV_HELP}\n`);
    return { exitCode: EXIT.ok, document: { usage: command.usage } };
  }
  return command.run(
    values as FlagValues,
    command.positionals ? positionalsOf(positionals, command.positionals, hint) : positionals,
    deps,
  );
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
