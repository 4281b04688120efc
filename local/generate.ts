import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import * as z from 'zod';
import { newGenerationId } from '../functions/api/generations.js';
import type { ExecutionRecord } from '../functions/shared/execution-service.js';
import {
  FINAL_STAGE,
  type GenerationRecord,
  IndexUnavailableError,
  STAGE,
} from '../functions/shared/generation-index.js';
import {
  formatIssues,
  type GenerationRequest,
  generationRequestSchema,
} from '../functions/shared/generation-request.js';
import { failedUpdate } from '../functions/shared/index-updates.js';
import { isRequestFileKey } from '../functions/shared/request-keys.js';
import { persistResultSchema } from '../functions/shared/workflow-state.js';
import { parseFlags, wantsJson } from './cli/args.js';
import {
  EXIT,
  type ExitCode,
  GenerationFailedError,
  InterruptedError,
  InvalidInputError,
  oneLine,
} from './cli/errors.js';
import {
  type CliIo,
  type CommandOutcome,
  type FailureDocument,
  runAsProcess,
  runCommand,
} from './cli/run.js';
import { httpUrlOf } from './cli/settings.js';
import { type LocalEngine, openLocalEngine } from './engine.js';
import { LOCAL_DIR } from './pipeline.js';
import { type CliImage, copyResult, engineRequestFileTarget, runRequestFile } from './request-file-run.js';
import { REQUEST_FLAG_OPTIONS, REQUEST_FLAGS_HELP, requestFromFlags } from './request-flags.js';

const EVENTS_FILE = path.join(LOCAL_DIR, 'events.jsonl');
const HELP_HINT = 'npm run generate -- --help';

const USAGE = `Usage: npm run generate -- "<prompt>" [options]
       npm run generate -- --from <requests.json | requests.jsonl> [--json]

Runs the generation workflow locally: the state machine synthesized from the CDK stack, the
Lambda handlers in-process, s3rver as S3 and, unless DASHSCOPE_API_KEY is set, the DashScope emulator.
With --from, the file goes through the S3 trigger's code (one request per JSONL line) as one batch,
shown as one progress bar (done/total, rate, ETA), and every valid request runs; completion events
are appended to .local/events.jsonl.

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

  const engine = await openEngine(io, json);
  const progress = new ProgressLine(io, json);
  try {
    const id = newGenerationId(Date.now());
    progress.say(
      `generation ${id}: ${request.data.n} × ${request.data.size} with ${request.data.model} ` +
        `(${engine.owner.dashscope.emulator ? 'DashScope emulator' : 'DashScope'}, local S3 at ${engine.s3.endpoint})`,
    );
    const started = Date.now();
    await startLocally(engine, id, request.data);
    const record = await follow(engine, id, (shown) => progress.update(describe(shown, started)));
    progress.done();
    const execution = await interruptible(engine.executions.settled(id));
    return await report(execution, record, { id, io, json, engine, outDir });
  } catch (error) {
    progress.done();
    throw error;
  } finally {
    await closeEngine(engine, io, json);
  }
}

/**
 * Registers the generation as `local` (what `npm run generate` made, whichever process runs the
 * engine), then starts its execution; a start that fails is recorded as failed, not left queued.
 */
async function startLocally(engine: LocalEngine, id: string, request: GenerationRequest): Promise<void> {
  const createdAt = new Date(engine.clock.now()).toISOString();
  const body = request as Record<string, unknown>;
  await engine.index.register({ id, createdAt, source: 'local', request: body });
  try {
    await engine.executions.start(id, body);
  } catch (error) {
    const endedAt = new Date(engine.clock.now()).toISOString();
    const cause = `The workflow could not be started: ${(error as Error).message}`;
    await engine.index
      .advance(
        failedUpdate({ id, request: body }, { error: 'ExecutionStartFailed', cause }, createdAt, endedAt),
      )
      .catch(() => undefined);
    throw error;
  }
}

/** Ctrl-C (SIGINT) or SIGTERM: the first stops following and closes the engine; a second exits at once. */
const interrupted = new AbortController();
let signals = 0;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    signals += 1;
    if (signals > 1) process.exit(EXIT.interrupted);
    interrupted.abort(new InterruptedError(`interrupted by ${signal}`));
  });
}

/** Settles as `promise`, or rejects with the interruption once Ctrl-C is pressed. */
function interruptible<T>(promise: Promise<T>): Promise<T> {
  if (interrupted.signal.aborted) return Promise.reject(interrupted.signal.reason);
  return new Promise<T>((resolve, reject) => {
    const stop = () => reject(interrupted.signal.reason);
    interrupted.signal.addEventListener('abort', stop, { once: true });
    promise.then(resolve, reject).finally(() => interrupted.signal.removeEventListener('abort', stop));
  });
}

/**
 * The local engine of `.local/`: this process runs the executions when no other process does
 * (`npm start`, another `npm run generate`); otherwise it hands them to that one and follows.
 */
async function openEngine(io: CliIo, json: boolean): Promise<LocalEngine> {
  const dashscopeBaseUrl = process.env.DASHSCOPE_BASE_URL || undefined;
  // A bad value is named as the variable the user set, before anything starts.
  if (dashscopeBaseUrl) httpUrlOf(dashscopeBaseUrl, 'DASHSCOPE_BASE_URL');
  const engine = await interruptible(
    openLocalEngine({
      kind: 'generate',
      localDir: LOCAL_DIR,
      dashscopeApiKey: process.env.DASHSCOPE_API_KEY || undefined,
      dashscopeBaseUrl,
      eventsFile: EVENTS_FILE,
      onPromoted: (recovery) => {
        if (!json)
          io.stderr(
            `\nThe local engine's owner stopped; this process took over (${recovery.resumed.length} generation(s) resumed)\n`,
          );
      },
    }),
  );
  if (!json && engine.role === 'follower') {
    const { owner } = engine;
    io.stderr(
      `The local engine runs in ${owner.kind === 'server' ? 'npm start' : 'npm run generate'} (PID ${owner.pid}); this run hands its work to it and follows.\n`,
    );
  }
  if (!json && engine.recovery && engine.recovery.resumed.length > 0) {
    io.stderr(`Resuming ${engine.recovery.resumed.length} generation(s) an earlier run left unfinished.\n`);
  }
  return engine;
}

/** Closes the engine; after Ctrl-C, says what becomes of the generations left running. */
async function closeEngine(engine: LocalEngine, io: CliIo, json: boolean): Promise<void> {
  const role = engine.role;
  const owner = engine.owner;
  const { unfinished } = await engine.close();
  if (!interrupted.signal.aborted || json) return;
  if (role === 'owner') {
    io.stderr(
      unfinished > 0
        ? `${unfinished} generation(s) will resume the next time \`npm start\` or \`npm run generate\` runs here.\n`
        : 'Nothing was left running.\n',
    );
  } else {
    io.stderr(
      `The generation goes on in the local engine (PID ${owner.pid}); follow it with \`npx sd35 get <id>\`${owner.api ? ` --api ${owner.api}` : ''}.\n`,
    );
  }
}

/** Follows a generation in the index until it ends, showing each change; returns its record. */
async function follow(
  engine: LocalEngine,
  id: string,
  show: (record: GenerationRecord) => void,
): Promise<GenerationRecord> {
  let shown = '';
  let unreachableSince: number | undefined;
  for (;;) {
    let record: GenerationRecord | undefined;
    try {
      record = await interruptible(engine.index.get(id));
      unreachableSince = undefined;
    } catch (error) {
      // The owner's DynamoDB went with its owner (killed, stopped): this process or another takes
      // over within seconds and redrives the generation, so the read is tried again meanwhile.
      if (interrupted.signal.aborted || !(error instanceof IndexUnavailableError)) throw error;
      unreachableSince ??= Date.now();
      if (Date.now() - unreachableSince > OWNER_TAKEOVER_MS) throw error;
      await interruptible(sleep(1_000));
      continue;
    }
    // A line per change of the record, not per read.
    const key = record ? `${record.status}:${record.stage}:${record.dashscope?.status}` : '';
    if (record && key !== shown) {
      shown = key;
      show(record);
    }
    if (record && FINAL_STATUSES.has(record.status)) return record;
    await interruptible(sleep(250));
  }
}

/** How long a follower keeps reading through an owner's loss before it gives up. */
const OWNER_TAKEOVER_MS = 120_000;

const FINAL_STATUSES: ReadonlySet<string> = new Set([
  'succeeded',
  'partial',
  'failed',
  'canceled',
  'expired',
]);

/**
 * `--from FILE`: reads the file and runs it through the local engine (`runRequestFile`): stored
 * under `requests/` in the local bucket, started by the trigger's code as on AWS.
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

  const engine = await openEngine(ctx.io, ctx.json);
  try {
    return await interruptible(
      runRequestFile(engineRequestFileTarget(engine), key, body, {
        ...ctx,
        eventsFile: EVENTS_FILE,
        signal: interrupted.signal,
      }),
    );
  } finally {
    await closeEngine(engine, ctx.io, ctx.json);
  }
}

/** One progress line from the generation's record: its status, images done and polls so far. */
function describe(record: GenerationRecord, started: number): string {
  const elapsed = ((Date.now() - started) / 1000).toFixed(1).padStart(6);
  const progress = record.progress ? ` · ${record.progress.done}/${record.progress.total} images` : '';
  const polls =
    record.stage > STAGE.submitted && record.stage < FINAL_STAGE
      ? ` · polls ${record.stage - STAGE.submitted}`
      : '';
  const task = record.dashscope?.status ? ` · DashScope ${record.dashscope.status}` : '';
  return `[${elapsed}s] ${record.status}${progress}${task}${polls}`;
}

async function report(
  execution: ExecutionRecord | undefined,
  record: GenerationRecord,
  ctx: { id: string; io: CliIo; json: boolean; engine: LocalEngine; outDir: string },
): Promise<CommandOutcome> {
  const output = succeededOutputSchema.safeParse(execution?.output);
  if (execution?.status !== 'SUCCEEDED' || !output.success) {
    // The same view the API and the events give.
    const error = record.error ?? {
      type: 'internal_error',
      message: `the execution ended ${execution?.status ?? 'unknown'}`,
    };
    throw new GenerationFailedError(
      ctx.id,
      record.status,
      error.type,
      `generation ${ctx.id} ${record.status}: ${error.type}: ${oneLine(error.message)}`,
    );
  }
  const { result } = output.data;
  const copied = await copyResult(ctx.engine, ctx.outDir, ctx.id, result);
  const document: CliResult = { id: ctx.id, ...copied };
  if (!ctx.json) {
    const { io } = ctx;
    io.stdout(
      `\nGeneration ${ctx.id} ${document.status}: ${copied.images.length} image(s) in s3://${ctx.engine.s3.bucket}\n`,
    );
    for (const image of copied.images) {
      io.stdout(`  ${image.key}  →  ${image.path}  (${image.bytes} bytes, seed ${image.seed})\n`);
    }
    io.stdout(`  ${copied.manifest.key}  →  ${copied.manifest.path}\n`);
    for (const failure of result.failed) {
      io.stdout(`  image ${failure.index} not stored: ${failure.type}: ${failure.message}\n`);
    }
  }
  return { exitCode: EXIT.ok, document };
}

const succeededOutputSchema = z.object({ result: persistResultSchema });

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
// After Ctrl-C the engine is closed and what it left running is on disk, to resume; but
// aws-local-stepfunctions keeps the timeouts of the runs it stopped armed (the execution's
// `TimeoutSeconds`, a waiting Task's), which would hold the process for days: it ends here.
if (interrupted.signal.aborted) process.exit(process.exitCode ?? EXIT.interrupted);
