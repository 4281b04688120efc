import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import * as z from 'zod';
import { GENERATION_SOURCE_HEADER } from '../../functions/api/schemas.js';
import { batchCountsSchema, batchIdSchema } from '../../functions/shared/batch.js';
import type { ApiClient } from './api-client.js';
import { batchBodyOf, batchFileKind, batchSettingsOf } from './batch-file.js';
import {
  BatchProgress,
  batchEnded,
  batchExitCode,
  batchExitReason,
  countsSummary,
  doneOf,
} from './batch-progress.js';
import { API_FLAGS, API_HELP, apiClient, type Command, DEFAULT_OUT_DIR, type Sd35Deps } from './command.js';
import { ApiAnswerError, EXIT, InvalidInputError, UnexpectedAnswerError } from './errors.js';
import type { CliIo, CommandOutcome } from './run.js';

/** A batch as the API shows it (docs/api.md): what the CLI reads of it; `--json` prints the answer as it came. */
export const batchViewSchema = z.object({
  id: z.string(),
  status: z.string(),
  source: z.string(),
  priority: z.string(),
  createdAt: z.string(),
  completedAt: z.string().optional(),
  estimatedCompletionAt: z.string().optional(),
  counts: batchCountsSchema,
  metadata: z.record(z.string(), z.string()).optional(),
  file: z.object({ bucket: z.string(), key: z.string() }).optional(),
  links: z.object({ self: z.string() }).loose(),
});
export type BatchView = z.infer<typeof batchViewSchema>;

const rejectedLineSchema = z.object({
  line: z.number(),
  error: z.object({ type: z.string(), message: z.string() }).loose(),
});
type RejectedLine = z.infer<typeof rejectedLineSchema>;

/** The answer of `POST /v1/batches`: the batch and the lines it rejected. */
const createdBatchSchema = batchViewSchema.extend({ rejected: z.array(rejectedLineSchema) });

const batchListSchema = z.object({ data: z.array(batchViewSchema), nextCursor: z.string().optional() });

const resultsLinkSchema = z.object({
  key: z.string(),
  url: z.string(),
  expiresAt: z.string(),
  expiresInSeconds: z.number(),
});

/** One line of a batch's results file, as far as the CLI reads it. */
const resultLineSchema = z.object({ line: z.number(), status: z.string() }).loose();

const WAIT_HELP = `  --wait                 follow the batch until it ends: a progress bar on a terminal (done/total, rate,
                         ETA), a line now and then otherwise; the exit code then says how it ended`;

/** Between two reads of a batch while `--wait` follows it, unless the deps say otherwise. */
const BATCH_POLL_MS = 2000;

export const BATCH_USAGE = `Usage: sd35 batch <command> [options]

A batch is a file of requests sent at once: one object to follow, cancel and collect (docs/cli.md).

Commands:
  create <FILE>          send a .jsonl file (one request per line) or a .json file (a list of requests)
  get <ID>               show a batch; --wait follows it until it ends
  list                   list batches, newest first
  cancel <ID>            cancel a batch: its waiting and running lines
  results <ID>           download its results.jsonl (one line per request) once it ended

Every command takes --help and --json.`;

export const BATCH_COMMANDS: Record<string, Command> = {
  create: {
    usage: `Usage: sd35 batch create <FILE> [options]

Sends FILE as one batch (POST /v1/batches) and prints it, with the lines the API rejected.
FILE is .jsonl (one request per line, sent as NDJSON: the line numbers are the file's) or .json
(a list of requests, {"requests": [...]} or one request). Requests are those of sd35 generate.

Options:
  --priority <p>         interactive | batch: the lane its lines wait in    [default batch]
  --webhook-url <url>    where the batch.completed event is sent
  --metadata <k=v>       a metadata pair, repeatable (up to 16)
  --idempotency-key <k>  send as Idempotency-Key: the same key and file give the same batch
${WAIT_HELP}
${API_HELP}

Exit codes: 2 when a line was rejected (the batch still runs its valid lines); with --wait,
else 1 when a line failed or was canceled, else 0.`,
    options: {
      priority: { type: 'string' },
      'webhook-url': { type: 'string' },
      metadata: { type: 'string', multiple: true },
      'idempotency-key': { type: 'string' },
      wait: { type: 'boolean' },
      ...API_FLAGS,
    },
    positionals: ['FILE'],
    async run(values, [file], deps) {
      const settings = batchSettingsOf({
        priority: values.priority as string | undefined,
        webhookUrl: values['webhook-url'] as string | undefined,
        metadata: values.metadata as string[] | undefined,
      });
      const api = apiClient(values, deps);
      const name = file as string;
      batchFileKind(name);
      let text: string;
      try {
        text = await readFile(name, 'utf8');
      } catch (error) {
        throw new InvalidInputError(`${name}: cannot read it (${readFailure(error)})`, { cause: error });
      }
      const body = batchBodyOf(name, text, settings);
      const quiet = values.json === true;
      if (body.kind === 'json' && body.warning) deps.io.stderr(`${body.warning}\n`);
      const key = values['idempotency-key'] as string | undefined;
      const headers = { [GENERATION_SOURCE_HEADER]: 'cli', ...(key ? { 'idempotency-key': key } : {}) };
      const { raw, parsed: created } = await api.send(
        body.kind === 'ndjson'
          ? {
              method: 'POST',
              path: '/v1/batches',
              query: body.query,
              text: { content: body.content, contentType: 'application/x-ndjson' },
              headers,
            }
          : { method: 'POST', path: '/v1/batches', body: body.body, headers },
        createdBatchSchema,
      );
      const { rejected } = created;
      if (!values.wait) {
        if (!quiet) deps.io.stdout(describeBatch(created, { rejected, api: values.api }));
        return outcome(created.id, created.counts, raw, deps.io, rejected.length > 0 ? EXIT.usage : EXIT.ok);
      }
      if (!quiet)
        deps.io.stderr(`batch ${created.id} created at ${api.baseUrl}: ${countsSummary(created.counts)}\n`);
      const final = await followBatch(api, created.id, { io: deps.io, quiet, deps });
      if (!quiet) deps.io.stdout(describeBatch(final.view, { rejected, api: values.api }));
      const document = {
        ...(final.raw as Record<string, unknown>),
        rejected: (raw as { rejected: unknown }).rejected,
      };
      return outcome(created.id, final.view.counts, document, deps.io, batchExitCode(final.view.counts));
    },
  },
  get: {
    usage: `Usage: sd35 batch get <ID> [options]

Shows a batch: its status and counts. With --json, prints the API's answer to GET /v1/batches/{id}
(with --wait, its last answer, once the batch ended).

Options:
${WAIT_HELP}
${API_HELP}`,
    options: { wait: { type: 'boolean' }, ...API_FLAGS },
    positionals: ['ID'],
    async run(values, [id], deps) {
      const api = apiClient(values, deps);
      const batchId = batchIdOf(id);
      const quiet = values.json === true;
      const { raw, view } = values.wait
        ? await followBatch(api, batchId, { io: deps.io, quiet, deps })
        : await readBatch(api, batchId);
      if (!quiet) deps.io.stdout(describeBatch(view, { api: values.api }));
      if (!values.wait) return { exitCode: EXIT.ok, document: raw };
      return outcome(view.id, view.counts, raw, deps.io, batchExitCode(view.counts));
    },
  },
  list: {
    usage: `Usage: sd35 batch list [options]

Lists batches, newest first. With --json, prints the API's own answer to GET /v1/batches.

Options:
  --limit <1-50>         batches per page                          [default 20]
  --cursor <cursor>      the next page (nextCursor of the previous one)
${API_HELP}`,
    options: { limit: { type: 'string' }, cursor: { type: 'string' }, ...API_FLAGS },
    positionals: [],
    async run(values, _positionals, deps) {
      const { raw, parsed } = await apiClient(values, deps).send(
        {
          method: 'GET',
          path: '/v1/batches',
          query: { limit: values.limit as string | undefined, cursor: values.cursor as string | undefined },
        },
        batchListSchema,
      );
      if (!values.json) {
        for (const view of parsed.data)
          deps.io.stdout(
            `${view.id}  ${view.status.padEnd(11)}  ${`${doneOf(view.counts)}/${view.counts.total}`.padStart(11)} done  ${view.source.padEnd(12)}  ${view.createdAt}\n`,
          );
        if (parsed.data.length === 0) deps.io.stdout('no batches\n');
        if (parsed.nextCursor) deps.io.stdout(`more: sd35 batch list --cursor ${parsed.nextCursor}\n`);
      }
      return { exitCode: EXIT.ok, document: raw };
    },
  },
  cancel: {
    usage: `Usage: sd35 batch cancel <ID> [options]

Cancels a batch: its waiting lines leave the queue, its running ones are canceled; it ends
"cancelled" when the last one has ended (harmless when it has ended). With --json, prints the
API's answer to POST /v1/batches/{id}/cancel.

Options:
${API_HELP}`,
    options: API_FLAGS,
    positionals: ['ID'],
    async run(values, [id], deps) {
      const api = apiClient(values, deps);
      const { raw, parsed } = await api.send(
        { method: 'POST', path: `/v1/batches/${batchIdOf(id)}/cancel` },
        batchViewSchema,
      );
      if (!values.json) deps.io.stdout(describeBatch(parsed, { api: values.api }));
      return { exitCode: EXIT.ok, document: raw };
    },
  },
  results: {
    usage: `Usage: sd35 batch results <ID> [options]

Downloads an ended batch's results into <out>/<ID>/results.jsonl and prints its path. The file
has one JSON line per request line: {line, id?, status, images?, seeds?, error?}.

Options:
  --out <dir>            where to write it, in <dir>/<ID>/          [default .local/generations]
${API_HELP}`,
    options: { out: { type: 'string' }, ...API_FLAGS },
    positionals: ['ID'],
    async run(values, [id], deps) {
      const batchId = batchIdOf(id);
      const document = await downloadResults(
        apiClient(values, deps),
        batchId,
        path.resolve((values.out as string | undefined) ?? DEFAULT_OUT_DIR),
        deps.fetch,
      );
      if (!values.json)
        deps.io.stdout(`${document.path}  (${summaryOfStatuses(document.lines, document.statuses)})\n`);
      return { exitCode: EXIT.ok, document };
    },
  },
};

/** The exit code and document of a batch command, with the reason of a nonzero code on stderr. */
function outcome(
  id: string,
  counts: BatchView['counts'],
  document: unknown,
  io: CliIo,
  exitCode: (typeof EXIT)[keyof typeof EXIT],
): CommandOutcome {
  const reason = exitCode === EXIT.ok ? undefined : batchExitReason(id, counts);
  if (reason) io.stderr(`error: ${reason}\n`);
  return { exitCode, document };
}

/** Why a file could not be read, in words. */
function readFailure(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'EISDIR') return 'it is a folder';
  return (error as Error).message;
}

/** @throws InvalidInputError for an id the API cannot have issued */
function batchIdOf(id: string | undefined): string {
  const parsed = batchIdSchema.safeParse(id);
  if (!parsed.success) throw new InvalidInputError(`ID: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
  return parsed.data;
}

async function readBatch(api: ApiClient, id: string): Promise<{ raw: unknown; view: BatchView }> {
  const { raw, parsed } = await api.send({ method: 'GET', path: `/v1/batches/${id}` }, batchViewSchema);
  return { raw, view: parsed };
}

/**
 * Reads the batch until it has ended, showing its progress on stderr (unless `quiet`): a bar
 * redrawn in place on a terminal, plain lines otherwise. Returns its last answer.
 */
export async function followBatch(
  api: ApiClient,
  id: string,
  options: {
    readonly io: CliIo;
    readonly quiet: boolean;
    readonly deps: Pick<Sd35Deps, 'pollIntervalMs' | 'now'>;
  },
): Promise<{ raw: unknown; view: BatchView }> {
  const { io, quiet } = options;
  const now = options.deps.now ?? Date.now;
  const progress = new BatchProgress(io.stderrIsTTY === true);
  const show = (text: string | undefined) => {
    if (!quiet && text) io.stderr(text);
  };
  try {
    for (;;) {
      const read = await readBatch(api, id);
      show(progress.update(read.view, now()));
      if (batchEnded(read.view)) return read;
      await sleep(options.deps.pollIntervalMs ?? BATCH_POLL_MS);
    }
  } finally {
    show(progress.end());
  }
}

/**
 * What `get`, `create` and `cancel` print:
 * ```
 * batch-…: completed · 3 lines: 2 succeeded, 1 rejected
 *   priority batch · source cli · created … · completed …
 *   line 2 rejected: n: must be at most 4
 *   results: sd35 batch results batch-…
 * ```
 */
export function describeBatch(
  view: BatchView,
  context: {
    readonly rejected?: readonly RejectedLine[];
    /** The `--api` flag the user typed, repeated in the commands the text suggests. */
    readonly api?: unknown;
  } = {},
): string {
  const lines = [`${view.id}: ${view.status} · ${countsSummary(view.counts)}`];
  const when = view.completedAt
    ? ` · completed ${view.completedAt}`
    : view.estimatedCompletionAt
      ? ` · expected to end by ${view.estimatedCompletionAt}`
      : '';
  lines.push(`  priority ${view.priority} · source ${view.source} · created ${view.createdAt}${when}`);
  if (view.metadata && Object.keys(view.metadata).length > 0)
    lines.push(
      `  metadata: ${Object.entries(view.metadata)
        .map(([key, value]) => `${key}=${value}`)
        .join(', ')}`,
    );
  if (view.file) lines.push(`  file: s3://${view.file.bucket}/${view.file.key}`);
  for (const { line, error } of context.rejected ?? [])
    lines.push(`  line ${line} rejected: ${error.message.replace(/^line \d+: /, '')}`);
  const api = typeof context.api === 'string' ? ` --api ${context.api}` : '';
  lines.push(
    batchEnded(view)
      ? `  results: sd35 batch results ${view.id}${api}`
      : `  follow it: sd35 batch get ${view.id} --wait${api}`,
  );
  return `${lines.join('\n')}\n`;
}

/** The `--json` document of `batch results`. */
export interface ResultsDocument {
  id: string;
  /** The results file's key in the bucket. */
  key: string;
  /** Absolute path of the file written. */
  path: string;
  bytes: number;
  /** Its lines: one per request line. */
  lines: number;
  /** How many lines have each status. */
  statuses: Record<string, number>;
}

/**
 * Writes an ended batch's results file into `outDir/ID/results.jsonl`.
 *
 * @throws ApiAnswerError (409, exit 2) while the batch has not ended, saying how to wait for it
 * @throws UnexpectedAnswerError when the link does not answer or the file is not JSON lines
 */
async function downloadResults(
  api: ApiClient,
  id: string,
  outDir: string,
  fetchFn: typeof fetch = fetch,
): Promise<ResultsDocument> {
  let link: z.infer<typeof resultsLinkSchema>;
  try {
    ({ parsed: link } = await api.send(
      { method: 'GET', path: `/v1/batches/${id}/results` },
      resultsLinkSchema,
    ));
  } catch (error) {
    if (error instanceof ApiAnswerError && error.status === 409)
      throw new ApiAnswerError(
        409,
        error.type,
        `${error.message} (wait for its end: sd35 batch get ${id} --wait)`,
      );
    throw error;
  }
  const response = await fetchFn(link.url);
  if (!response.ok)
    throw new UnexpectedAnswerError(`the download of ${link.key} answered HTTP ${response.status}`);
  const bytes = Buffer.from(await response.arrayBuffer());
  const statuses: Record<string, number> = {};
  const content = bytes
    .toString('utf8')
    .split('\n')
    .filter((line) => line.trim() !== '');
  for (const [index, text] of content.entries()) {
    let line: unknown;
    try {
      line = JSON.parse(text);
    } catch {
      line = undefined;
    }
    const parsed = resultLineSchema.safeParse(line);
    if (!parsed.success)
      throw new UnexpectedAnswerError(`${link.key}: line ${index + 1} is not a results line`);
    statuses[parsed.data.status] = (statuses[parsed.data.status] ?? 0) + 1;
  }
  const dir = path.resolve(outDir, id);
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, 'results.jsonl');
  await writeFile(file, bytes);
  return { id, key: link.key, path: file, bytes: bytes.length, lines: content.length, statuses };
}

/** The order statuses are listed in; any other after them. */
const STATUS_ORDER = ['succeeded', 'partial', 'failed', 'canceled', 'expired', 'rejected'];

function summaryOfStatuses(lines: number, statuses: Record<string, number>): string {
  const rank = (status: string) =>
    (STATUS_ORDER.indexOf(status) + STATUS_ORDER.length + 1) % (STATUS_ORDER.length + 1);
  const parts = Object.entries(statuses)
    .sort(([a], [b]) => rank(a) - rank(b))
    .map(([status, count]) => `${count} ${status}`);
  return `${lines} line${lines === 1 ? '' : 's'}${parts.length > 0 ? `: ${parts.join(', ')}` : ''}`;
}
