import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { newGenerationId } from '../functions/api/generations.js';
import { failureView } from '../functions/shared/failure.js';
import { formatIssues, generationRequestSchema } from '../functions/shared/generation-request.js';
import type { TaskState } from '../functions/shared/workflow-state.js';
import { isRequestFileKey } from '../functions/trigger/request-file.js';
import { LOCAL_DIR, type LocalPipeline, startLocalPipeline } from './pipeline.js';
import { dropRequestFile } from './request-file-drop.js';
import { REQUEST_FLAG_OPTIONS, REQUEST_FLAGS_HELP, requestFromFlags } from './request-flags.js';
import type { ExecutionOutcome } from './runner.js';

const EVENTS_FILE = path.join(LOCAL_DIR, 'events.jsonl');

const USAGE = `Usage: npm run generate -- "<prompt>" [options]
       npm run generate -- --from <requests.json | requests.jsonl> [--json]

Runs the generation workflow locally: the state machine synthesized from the CDK stack, the
Lambda handlers in-process, s3rver as S3 and, unless DASHSCOPE_API_KEY is set, the DashScope emulator.
With --from, the file goes through the S3 trigger's code (one request per JSONL line) and every
valid request runs; completion events are appended to .local/events.jsonl.

Options:
${REQUEST_FLAGS_HELP}
  --from <file>          a request file (.json: one request; .jsonl: one per line)
  --out <dir>            where to copy the images from the local S3      [default .local/generations]
  --json                 print one JSON document on stdout
  -h, --help             this text`;

interface CliImage {
  key: string;
  path: string;
  bytes: number;
  sha256: string;
  contentType: string;
  seed: number;
}

interface CliResult {
  id: string;
  status: string;
  images: CliImage[];
  manifest: { key: string; path: string } | null;
  error?: { type: string; message: string };
}

interface LineOutcome {
  line: number;
  id?: string;
  status: string;
  error?: { type: string; message: string };
}

async function main(): Promise<number> {
  let args: ReturnType<typeof parse>;
  try {
    args = parse();
  } catch (error) {
    process.stderr.write(`error: ${(error as Error).message}\n\n${USAGE}\n`);
    return 2;
  }
  if (args.values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const json = args.values.json ?? false;
  const outDir = path.resolve(args.values.out ?? path.join(LOCAL_DIR, 'generations'));
  if (args.values.from) return fromFile(args.values.from, json);

  const request = generationRequestSchema.safeParse(requestFromFlags(args.values, args.positionals));
  if (!request.success)
    return fail(json, 'invalid_request', `invalid request: ${formatIssues(request.error)}`, 2);

  const pipeline = await startPipeline();
  const progress = new ProgressLine(json);
  try {
    const id = newGenerationId(Date.now());
    progress.say(
      `generation ${id}: ${request.data.n} × ${request.data.size} with ${request.data.model} ` +
        `(${pipeline.emulator ? 'DashScope emulator' : 'DashScope'}, local S3 at ${pipeline.s3.endpoint})`,
    );
    const started = Date.now();
    let last: TaskState | undefined;
    const outcome = await pipeline.runner.run(id, request.data, {
      onTaskState: (state) => {
        last = state;
        progress.update(describe(state, started));
      },
    });
    progress.done();
    return await report(outcome, { id, json, pipeline, outDir, last });
  } finally {
    await pipeline.close();
  }
}

function parse() {
  return parseArgs({
    allowPositionals: true,
    options: {
      ...REQUEST_FLAG_OPTIONS,
      from: { type: 'string' },
      out: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}

function startPipeline(): Promise<LocalPipeline> {
  return startLocalPipeline({
    dashscopeApiKey: process.env.DASHSCOPE_API_KEY || undefined,
    dashscopeBaseUrl: process.env.DASHSCOPE_BASE_URL || undefined,
    eventsFile: EVENTS_FILE,
  });
}

/**
 * `--from FILE`: uploads the file under `requests/` in the local S3 and hands the trigger Lambda's
 * code the "Object Created" event S3 would send; then runs every started generation to its end.
 */
async function fromFile(file: string, json: boolean): Promise<number> {
  const key = `requests/${path.basename(file)}`;
  if (!isRequestFileKey(key))
    return fail(json, 'invalid_request', `--from needs a .json or .jsonl file, got ${file}`, 2);
  let body: Buffer;
  try {
    body = await readFile(file);
  } catch (error) {
    return fail(json, 'invalid_request', `cannot read ${file}: ${(error as Error).message}`, 2);
  }

  const pipeline = await startPipeline();
  const say = (text: string) => json || process.stderr.write(`${text}\n`);
  try {
    const { report: reportOf } = await dropRequestFile(
      {
        s3: pipeline.s3.client,
        bucket: pipeline.s3.bucket,
        executions: pipeline.executions,
        index: pipeline.index,
        clock: pipeline.clock,
        events: pipeline.events,
        logger: {
          debug() {},
          info() {},
          warn: (message) => say(`warning: ${message}`),
          error: (message) => say(`error: ${message}`),
        },
      },
      key,
      body,
    );
    const started = reportOf.results.filter((r) => r.id && r.status !== 'rejected');
    say(
      `${key}: ${started.length} generation(s) started, ${reportOf.results.length - started.length} line(s) rejected`,
    );
    for (const rejected of reportOf.results.filter((r) => r.status === 'rejected'))
      say(`  ${rejected.error?.message}`);

    const results: LineOutcome[] = [];
    for (const line of reportOf.results) {
      if (!line.id) {
        results.push({ line: line.line, status: 'rejected', error: pick(line.error) });
        continue;
      }
      await pipeline.executions.settled(line.id);
      const record = await pipeline.index.get(line.id);
      if (record?.status === 'succeeded') {
        results.push({ line: line.line, id: line.id, status: 'succeeded' });
      } else {
        results.push({
          line: line.line,
          id: line.id,
          status: record?.status ?? 'failed',
          error: pick(record?.error ?? { type: 'internal_error', message: 'The generation left no record' }),
        });
      }
      const done = results.at(-1);
      say(
        `  line ${done?.line}: ${done?.status}${done?.id ? ` (${done.id})` : ''}${done?.error ? `: ${done.error.message}` : ''}`,
      );
    }
    const completions = pipeline.events.events.filter(
      (e) => e['detail-type'] !== 'Generation Request Rejected',
    );
    say(
      `${completions.length} completion event(s) appended to ${EVENTS_FILE}; report: s3://${pipeline.s3.bucket}/${key}.result`,
    );
    if (json) process.stdout.write(`${JSON.stringify({ results })}\n`);
    return results.every((r) => r.status === 'succeeded') ? 0 : 1;
  } finally {
    await pipeline.close();
  }
}

function pick(error: { type: string; message: string } | undefined): LineOutcome['error'] {
  return error ? { type: error.type, message: error.message } : undefined;
}

function describe(state: TaskState, started: number): string {
  const elapsed = ((Date.now() - started) / 1000).toFixed(1).padStart(6);
  const progress = state.progress ? ` · ${state.progress.succeeded}/${state.progress.total} images` : '';
  const next =
    state.status === 'queued' || state.status === 'running'
      ? ` · next poll in ${state.nextPollSeconds}s`
      : '';
  return `[${elapsed}s] ${state.status}${progress} · polls ${state.pollCount}${next}`;
}

async function report(
  outcome: ExecutionOutcome,
  ctx: { id: string; json: boolean; pipeline: LocalPipeline; outDir: string; last?: TaskState },
): Promise<number> {
  if (outcome.status === 'FAILED') {
    // The same view the API and the events give: the last task state names a FAILED task's cause.
    const error = failureView(outcome.error, outcome.cause, ctx.last);
    return fail(
      ctx.json,
      error.type,
      `generation ${ctx.id} failed: ${outcome.error}: ${oneLine(outcome.cause)}`,
      1,
      ctx.id,
    );
  }
  const { s3 } = ctx.pipeline;
  const dir = path.join(ctx.outDir, ctx.id);
  await mkdir(dir, { recursive: true });
  const copy = async (key: string) => {
    const object = await s3.client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }));
    const file = path.join(dir, path.basename(key));
    await writeFile(file, (await object.Body?.transformToByteArray()) ?? new Uint8Array());
    return file;
  };
  const images: CliImage[] = [];
  for (const { key, bytes, sha256, contentType, seed } of outcome.output.result.images) {
    images.push({ key, path: await copy(key), bytes, sha256, contentType, seed });
  }
  const manifest = await copy(outcome.output.result.manifestKey);
  const result: CliResult = {
    id: ctx.id,
    status: outcome.output.result.status === 'complete' ? 'succeeded' : 'partial',
    images,
    manifest: { key: outcome.output.result.manifestKey, path: manifest },
  };
  if (ctx.json) {
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } else {
    process.stdout.write(
      `\nGeneration ${ctx.id} ${result.status}: ${images.length} image(s) in s3://${s3.bucket}\n`,
    );
    for (const image of images) {
      process.stdout.write(`  ${image.key}  →  ${image.path}  (${image.bytes} bytes, seed ${image.seed})\n`);
    }
    process.stdout.write(`  ${result.manifest?.key}  →  ${result.manifest?.path}\n`);
    for (const failure of outcome.output.result.failed) {
      process.stdout.write(`  image ${failure.index} not stored: ${failure.type}: ${failure.message}\n`);
    }
  }
  return 0;
}

function fail(json: boolean, type: string, message: string, code: number, id = ''): number {
  if (json) {
    const result: CliResult = { id, status: 'failed', images: [], manifest: null, error: { type, message } };
    process.stdout.write(`${JSON.stringify(result)}\n`);
  }
  process.stderr.write(`error: ${message}\n`);
  return code;
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

/** Progress on stderr: rewritten in place on a terminal, one line per change otherwise. */
class ProgressLine {
  #last = '';
  constructor(private readonly quiet: boolean) {}

  say(text: string): void {
    if (!this.quiet) process.stderr.write(`${text}\n`);
  }

  update(text: string): void {
    if (this.quiet || text === this.#last) return;
    this.#last = text;
    process.stderr.write(process.stderr.isTTY ? `\r\x1b[2K${text}` : `${text}\n`);
  }

  done(): void {
    if (!this.quiet && process.stderr.isTTY && this.#last) process.stderr.write('\n');
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`error: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  },
);
