import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { newGenerationId } from '../functions/api/generations.js';
import { failureView } from '../functions/shared/failure.js';
import { formatIssues, generationRequestSchema } from '../functions/shared/generation-request.js';
import { isRequestFileKey } from '../functions/shared/request-keys.js';
import type { TaskState } from '../functions/shared/workflow-state.js';
import { parseFlags, wantsJson } from './cli/args.js';
import { EXIT, type ExitCode, GenerationFailedError, InvalidInputError, oneLine } from './cli/errors.js';
import {
  type CliIo,
  type CommandOutcome,
  type FailureDocument,
  runAsProcess,
  runCommand,
} from './cli/run.js';
import { LOCAL_DIR, type LocalPipeline, startLocalPipeline } from './pipeline.js';
import { type CliImage, copyResult, runRequestFile } from './request-file-run.js';
import { REQUEST_FLAG_OPTIONS, REQUEST_FLAGS_HELP, requestFromFlags } from './request-flags.js';
import type { ExecutionOutcome } from './runner.js';

const EVENTS_FILE = path.join(LOCAL_DIR, 'events.jsonl');
const HELP_HINT = 'npm run generate -- --help';

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
  --json                 print exactly one JSON document on stdout
  -h, --help             this text

Exit codes: 0 ok, 1 the generation failed, 2 invalid input or usage (docs/cli.md).`;

const OPTIONS = {
  ...REQUEST_FLAG_OPTIONS,
  from: { type: 'string' },
  out: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

interface CliResult {
  id: string;
  status: string;
  images: CliImage[];
  manifest: { key: string; path: string } | null;
  error?: { type: string; message: string };
}

/** The documented failure shape of a single run: no images, no manifest, and the error. */
const failureDocument: FailureDocument = (error, cause): CliResult => ({
  id: cause instanceof GenerationFailedError ? cause.id : '',
  status: 'failed',
  images: [],
  manifest: null,
  error,
});

async function main(argv: string[], io: CliIo): Promise<ExitCode> {
  const json = wantsJson(argv);
  // A --from run fails with its own document ({results}); everything else with a single run's.
  return runCommand(io, json, () => generate(argv, io, json), failureDocument);
}

async function generate(argv: string[], io: CliIo, json: boolean): Promise<CommandOutcome> {
  const args = parseFlags(argv, OPTIONS, HELP_HINT);
  if (args.values.help) {
    if (!json) io.stdout(`${USAGE}\n`);
    return { exitCode: EXIT.ok, document: { usage: USAGE } };
  }
  const outDir = path.resolve(args.values.out ?? path.join(LOCAL_DIR, 'generations'));
  if (args.values.from) {
    if (args.positionals.length > 0)
      throw new InvalidInputError(
        `--from: takes no prompt, got ${JSON.stringify(args.positionals.join(' '))}`,
      );
    return fromFile(args.values.from, { io, json, outDir });
  }

  const request = generationRequestSchema.safeParse(requestFromFlags(args.values, args.positionals));
  if (!request.success) throw new InvalidInputError(`invalid request: ${formatIssues(request.error)}`);

  const pipeline = await startPipeline();
  const progress = new ProgressLine(io, json);
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
    return await report(outcome, { id, io, json, pipeline, outDir, last });
  } finally {
    await pipeline.close();
  }
}

function startPipeline(): Promise<LocalPipeline> {
  return startLocalPipeline({
    dashscopeApiKey: process.env.DASHSCOPE_API_KEY || undefined,
    dashscopeBaseUrl: process.env.DASHSCOPE_BASE_URL || undefined,
    eventsFile: EVENTS_FILE,
  });
}

/**
 * `--from FILE`: reads the file and runs it through the local pipeline (`runRequestFile`).
 */
async function fromFile(
  file: string,
  ctx: { io: CliIo; json: boolean; outDir: string },
): Promise<CommandOutcome> {
  const key = `requests/${path.basename(file)}`;
  if (!isRequestFileKey(key))
    throw new InvalidInputError(`--from: needs a .json or .jsonl file, got ${file}`);
  let body: Buffer;
  try {
    body = await readFile(file);
  } catch (error) {
    throw new InvalidInputError(`--from: cannot read ${file}: ${(error as Error).message}`, { cause: error });
  }

  const pipeline = await startPipeline();
  try {
    return await runRequestFile(pipeline, key, body, { ...ctx, eventsFile: EVENTS_FILE });
  } finally {
    await pipeline.close();
  }
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
  ctx: { id: string; io: CliIo; json: boolean; pipeline: LocalPipeline; outDir: string; last?: TaskState },
): Promise<CommandOutcome> {
  if (outcome.status === 'FAILED') {
    // The same view the API and the events give: the last task state names a FAILED task's cause.
    const error = failureView(outcome.error, outcome.cause, ctx.last);
    throw new GenerationFailedError(
      ctx.id,
      'failed',
      error.type,
      `generation ${ctx.id} failed: ${outcome.error}: ${oneLine(outcome.cause)}`,
    );
  }
  const copied = await copyResult(ctx.pipeline, ctx.outDir, ctx.id, outcome.output.result);
  const result: CliResult = { id: ctx.id, ...copied };
  if (!ctx.json) {
    const { io } = ctx;
    io.stdout(
      `\nGeneration ${ctx.id} ${result.status}: ${copied.images.length} image(s) in s3://${ctx.pipeline.s3.bucket}\n`,
    );
    for (const image of copied.images) {
      io.stdout(`  ${image.key}  →  ${image.path}  (${image.bytes} bytes, seed ${image.seed})\n`);
    }
    io.stdout(`  ${copied.manifest.key}  →  ${copied.manifest.path}\n`);
    for (const failure of outcome.output.result.failed) {
      io.stdout(`  image ${failure.index} not stored: ${failure.type}: ${failure.message}\n`);
    }
  }
  return { exitCode: EXIT.ok, document: result };
}

/** Progress on stderr: rewritten in place on a terminal, one line per change otherwise. */
class ProgressLine {
  #last = '';
  constructor(
    private readonly io: CliIo,
    private readonly quiet: boolean,
  ) {}

  say(text: string): void {
    if (!this.quiet) this.io.stderr(`${text}\n`);
  }

  update(text: string): void {
    if (this.quiet || text === this.#last) return;
    this.#last = text;
    this.io.stderr(this.io.stderrIsTTY ? `\r\x1b[2K${text}` : `${text}\n`);
  }

  done(): void {
    if (!this.quiet && this.io.stderrIsTTY && this.#last) this.io.stderr('\n');
  }
}

const argv = process.argv.slice(2);
await runAsProcess(wantsJson(argv), (io) => main(argv, io), failureDocument);
