import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { newGenerationId } from '../functions/api/generations.js';
import { DEFAULT_DASHSCOPE_BASE_URL } from '../functions/shared/dashscope/client.js';
import { formatIssues, generationRequestSchema } from '../functions/shared/generation-request.js';
import type { TaskState } from '../functions/shared/workflow-state.js';
import { startEmulator } from './dashscope-emulator/server.js';
import { REQUEST_FLAG_OPTIONS, REQUEST_FLAGS_HELP, requestFromFlags } from './request-flags.js';
import { createLocalRunner, type ExecutionOutcome } from './runner.js';
import { startLocalS3 } from './s3.js';

const PROJECT_ROOT = path.join(import.meta.dirname, '..');
/** Local state (s3rver data, copies of images) lives here, git-ignored. */
const LOCAL_DIR = path.join(PROJECT_ROOT, '.local');

const USAGE = `Usage: npm run generate -- "<prompt>" [options]

Runs the generation workflow locally: the state machine synthesized from the CDK stack, the
Lambda handlers in-process, s3rver as S3 and, unless DASHSCOPE_API_KEY is set, the DashScope emulator.

Options:
${REQUEST_FLAGS_HELP}
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
  const request = generationRequestSchema.safeParse(requestFromFlags(args.values, args.positionals));
  if (!request.success)
    return fail(json, 'invalid_request', `invalid request: ${formatIssues(request.error)}`, 2);

  const realKey = process.env.DASHSCOPE_API_KEY;
  const s3 = await startLocalS3({ directory: path.join(LOCAL_DIR, 's3') });
  const emulator = realKey ? undefined : await startEmulator({ speed: 4 });
  const id = newGenerationId(Date.now());
  const progress = new ProgressLine(json);

  try {
    const runner = createLocalRunner({
      dashscope: emulator
        ? {
            baseUrl: emulator.url,
            apiKey: emulator.apiKey,
            resultHosts: ['127.0.0.1'],
            allowHttpResults: true,
          }
        : { baseUrl: process.env.DASHSCOPE_BASE_URL ?? DEFAULT_DASHSCOPE_BASE_URL, apiKey: realKey ?? '' },
      s3: { client: s3.client, bucket: s3.bucket },
    });
    progress.say(
      `generation ${id}: ${request.data.n} × ${request.data.size} with ${request.data.model} ` +
        `(${emulator ? 'DashScope emulator' : 'DashScope'}, local S3 at ${s3.endpoint})`,
    );
    const started = Date.now();
    const outcome = await runner.run(id, request.data, {
      onTaskState: (state) => progress.update(describe(state, started)),
    });
    progress.done();
    return await report(outcome, {
      id,
      json,
      s3,
      outDir: path.resolve(args.values.out ?? path.join(LOCAL_DIR, 'generations')),
    });
  } finally {
    await emulator?.close();
    await s3.close();
  }
}

function parse() {
  return parseArgs({
    allowPositionals: true,
    options: {
      ...REQUEST_FLAG_OPTIONS,
      out: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
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
  ctx: { id: string; json: boolean; s3: Awaited<ReturnType<typeof startLocalS3>>; outDir: string },
): Promise<number> {
  if (outcome.status === 'FAILED') {
    return fail(
      ctx.json,
      outcome.error,
      `generation ${ctx.id} failed: ${outcome.error}: ${oneLine(outcome.cause)}`,
      1,
      ctx.id,
    );
  }
  const dir = path.join(ctx.outDir, ctx.id);
  await mkdir(dir, { recursive: true });
  const copy = async (key: string) => {
    const object = await ctx.s3.client.send(new GetObjectCommand({ Bucket: ctx.s3.bucket, Key: key }));
    const file = path.join(dir, path.basename(key));
    await writeFile(file, (await object.Body?.transformToByteArray()) ?? new Uint8Array());
    return file;
  };
  const images: CliImage[] = [];
  for (const image of outcome.output.result.images) {
    const { key, bytes, sha256, contentType, seed } = image;
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
      `\nGeneration ${ctx.id} ${result.status}: ${images.length} image(s) in s3://${ctx.s3.bucket}\n`,
    );
    for (const image of images)
      process.stdout.write(`  ${image.key}  →  ${image.path}  (${image.bytes} bytes, seed ${image.seed})\n`);
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
