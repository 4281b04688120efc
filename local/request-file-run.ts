import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import * as z from 'zod';
import type { BatchCounts, BatchIndex, BatchStatus } from '../functions/shared/batch.js';
import type { ExecutionRecord } from '../functions/shared/execution-service.js';
import type { GenerationIndex } from '../functions/shared/generation-index.js';
import { REPORT_SUFFIX } from '../functions/shared/request-keys.js';
import { type PersistResult, persistResultSchema } from '../functions/shared/workflow-state.js';
import type { TriggerReport } from '../functions/trigger/trigger.js';
import { BatchProgress } from './cli/batch-progress.js';
import type { DownloadedImage } from './cli/download.js';
import { EXIT } from './cli/errors.js';
import type { CliIo, CommandOutcome } from './cli/run.js';
import type { LocalEngine } from './engine.js';
import type { LocalPipeline } from './pipeline.js';
import { dropRequestFile } from './request-file-drop.js';

/** An image copied from the local S3: `sd35`'s downloaded image without the index. */
export type CliImage = Omit<DownloadedImage, 'index'>;

/** A generation's images and manifest, copied out of the local S3. */
export interface CopiedResult {
  status: 'succeeded' | 'partial';
  images: CliImage[];
  manifest: { key: string; path: string };
}

/** What `--from` reports for one line of the file. */
export interface LineOutcome {
  line: number;
  id?: string;
  status: string;
  /** This delivery `started` the line, or found it started by an earlier delivery of the file (`duplicate`). */
  delivery?: 'started' | 'duplicate';
  images?: CliImage[];
  manifest?: { key: string; path: string };
  error?: { type: string; message: string };
}

/** The batch the file is, as `--json` reports it: its counts and status as they stood at the end. */
export interface BatchOutcome {
  id: string;
  links: { self: string };
  status?: BatchStatus;
  counts?: BatchCounts;
}

/** The part of a succeeded execution's output that says what was stored. */
const outputSchema = z.object({ result: persistResultSchema });

function pick(error: { type: string; message: string } | undefined): LineOutcome['error'] {
  return error ? { type: error.type, message: error.message } : undefined;
}

/** Copies a stored generation's images and manifest from the local S3 into `outDir/ID/`. */
export async function copyResult(
  pipeline: { readonly s3: { readonly client: S3Client; readonly bucket: string } },
  outDir: string,
  id: string,
  result: PersistResult,
): Promise<CopiedResult> {
  const { s3 } = pipeline;
  const dir = path.join(outDir, id);
  await mkdir(dir, { recursive: true });
  const copy = async (key: string) => {
    const object = await s3.client.send(new GetObjectCommand({ Bucket: s3.bucket, Key: key }));
    const file = path.join(dir, path.basename(key));
    await writeFile(file, (await object.Body?.transformToByteArray()) ?? new Uint8Array());
    return file;
  };
  const images: CliImage[] = [];
  for (const { key, bytes, sha256, contentType, seed } of result.images) {
    images.push({ key, path: await copy(key), bytes, sha256, contentType, seed });
  }
  return {
    status: result.status === 'complete' ? 'succeeded' : 'partial',
    images,
    manifest: { key: result.manifestKey, path: await copy(result.manifestKey) },
  };
}

/**
 * What a request file runs through: a bucket, the index, the executions, and how a stored file
 * reaches the trigger. A pipeline (tests) hands the trigger the event itself
 * ({@link pipelineRequestFileTarget}); the engine of `npm run generate` stores the file in the
 * watched bucket and reads the trigger's report, as on AWS.
 */
export interface RequestFileTarget {
  readonly s3: { readonly client: S3Client; readonly bucket: string };
  readonly index: Pick<GenerationIndex, 'get'>;
  /** The batches, for the file's progress: without them, no progress is shown. */
  readonly batches?: Pick<BatchIndex, 'get'>;
  readonly executions: {
    settled(name: string): Promise<unknown>;
    describe(name: string): Promise<ExecutionRecord | undefined>;
  };
  /** Stores the file under `key` and returns the trigger's report of this delivery. */
  deliver(key: string, body: Uint8Array, say: (text: string) => void): Promise<TriggerReport>;
}

/** A pipeline as a request-file target: the file is stored, and the trigger's code run in-process. */
export function pipelineRequestFileTarget(pipeline: LocalPipeline): RequestFileTarget {
  return {
    s3: pipeline.s3,
    index: pipeline.index,
    batches: pipeline.batches,
    executions: pipeline.executions,
    async deliver(key, body, say) {
      const { report } = await dropRequestFile(
        {
          s3: pipeline.s3.client,
          bucket: pipeline.s3.bucket,
          executions: pipeline.executions,
          index: pipeline.index,
          batches: pipeline.batches,
          clock: pipeline.clock,
          events: pipeline.events,
          defaultModel: pipeline.runner.defaultModel,
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
      return report;
    },
  };
}

/**
 * Runs a request file as `npm run generate -- --from` does: delivers it under `key` (see
 * {@link RequestFileTarget}), runs every started generation to its end and copies each one's
 * images into `outDir/ID/`. While they run, shows the file's batch's progress on stderr (one bar
 * on a terminal, a line now and then otherwise); then prints each line's outcome and where its
 * images are (stderr), or returns them as the `--json` document `{results, batch}`.
 *
 * @returns exit 2 when a line was rejected, else 1 when a generation failed, else 0
 */
export async function runRequestFile(
  target: LocalPipeline | RequestFileTarget,
  key: string,
  body: Uint8Array,
  ctx: {
    readonly io: CliIo;
    readonly json: boolean;
    readonly outDir: string;
    readonly eventsFile?: string;
    /** Stops the progress (Ctrl-C): the caller stops waiting for the lines. */
    readonly signal?: AbortSignal;
    /** Between two reads of the batch for the progress. @default 500 */
    readonly pollIntervalMs?: number;
  },
): Promise<CommandOutcome> {
  const pipeline = 'deliver' in target ? target : pipelineRequestFileTarget(target);
  const say = (text: string) => ctx.json || ctx.io.stderr(`${text}\n`);
  const reportOf = await pipeline.deliver(key, body, say);
  const started = reportOf.results.filter((r) => r.id && r.status !== 'rejected');
  const rejectedLines = reportOf.results.filter((r) => r.status === 'rejected');
  const notStarted = reportOf.results.length - started.length - rejectedLines.length;
  say(
    `${key}: ${reportOf.batch ? `batch ${reportOf.batch.id}, ` : ''}${started.length} generation(s) started, ${rejectedLines.length} line(s) rejected` +
      `${notStarted > 0 ? `, ${notStarted} line(s) not started (the batch was cancelled)` : ''}`,
  );
  for (const rejected of rejectedLines) say(`  ${rejected.error?.message}`);

  const batch = reportOf.batch
    ? { id: reportOf.batch.id, links: { self: reportOf.batch.links.self } }
    : undefined;
  if (batch && pipeline.batches && !ctx.json && started.length > 0)
    await showProgress(
      pipeline.batches,
      batch.id,
      Promise.allSettled(started.map((line) => pipeline.executions.settled(line.id as string))),
      ctx,
    );

  const results: LineOutcome[] = [];
  for (const line of reportOf.results) {
    // Interrupted: the caller has stopped waiting, and says what becomes of the lines.
    ctx.signal?.throwIfAborted();
    if (!line.id) {
      results.push(
        line.status === 'canceled'
          ? { line: line.line, status: 'canceled' }
          : { line: line.line, status: 'rejected', error: pick(line.error) },
      );
      continue;
    }
    await pipeline.executions.settled(line.id);
    const execution = await pipeline.executions.describe(line.id);
    // The index holds the generation as the API shows it: the same status and error type.
    const record = await pipeline.index.get(line.id);
    let done: LineOutcome;
    if (execution?.status === 'SUCCEEDED') {
      const { result } = outputSchema.parse(execution.output);
      done = {
        line: line.line,
        id: line.id,
        delivery: line.status === 'duplicate' ? 'duplicate' : 'started',
        ...(await copyResult(pipeline, ctx.outDir, line.id, result)),
      };
    } else {
      const error = record?.error ?? { type: 'internal_error', message: 'The generation left no record' };
      done = {
        line: line.line,
        id: line.id,
        delivery: line.status === 'duplicate' ? 'duplicate' : 'started',
        status: record?.status ?? 'failed',
        error: pick(error),
      };
    }
    results.push(done);
    say(
      `  line ${done.line}: ${done.status}${done.id ? ` (${done.id})` : ''}${done.error ? `: ${done.error.message}` : ''}`,
    );
    for (const image of done.images ?? []) say(`    ${image.key}  →  ${image.path}`);
    if (done.manifest) say(`    ${done.manifest.key}  →  ${done.manifest.path}`);
  }
  const announced = reportOf.results.filter((line) => line.status === 'started').length;
  say(
    `${announced} completion event(s) ${ctx.eventsFile ? `appended to ${ctx.eventsFile}` : 'published'}` +
      `${announced < started.length ? ` (${started.length - announced} line(s) were started by an earlier delivery of the same file)` : ''}` +
      `; report: s3://${pipeline.s3.bucket}/${key}.result`,
  );
  const exitCode = results.some((r) => r.status === 'rejected')
    ? EXIT.usage
    : results.every((r) => r.status === 'succeeded' || r.status === 'partial')
      ? EXIT.ok
      : EXIT.failed;
  return {
    exitCode,
    document: { results, ...(batch ? { batch: await batchOutcome(batch, pipeline) } : {}) },
  };
}

/** The batch with its status and counts as they stand (without them when they cannot be read). */
async function batchOutcome(
  batch: { id: string; links: { self: string } },
  target: Pick<RequestFileTarget, 'batches'>,
): Promise<BatchOutcome> {
  const record = await target.batches?.get(batch.id).catch(() => undefined);
  return record ? { ...batch, status: record.status, counts: record.counts } : batch;
}

/**
 * Shows the batch's progress on stderr until `settled` (every started line ended) or the signal
 * stops it: a bar redrawn in place on a terminal, a line now and then otherwise. A read of the
 * batch that fails (its owner's DynamoDB gone with it) is skipped: the next one shows it.
 */
async function showProgress(
  batches: Pick<BatchIndex, 'get'>,
  batchId: string,
  settled: Promise<unknown>,
  ctx: { readonly io: CliIo; readonly signal?: AbortSignal; readonly pollIntervalMs?: number },
): Promise<void> {
  const { signal } = ctx;
  const progress = new BatchProgress(ctx.io.stderrIsTTY === true);
  const write = (text: string | undefined) => {
    if (text) ctx.io.stderr(text);
  };
  // On Ctrl-C the bar's line is closed at once, before whatever the interruption prints.
  const close = () => write(progress.end());
  signal?.addEventListener('abort', close, { once: true });
  const stopped = new Promise<void>((resolve) =>
    signal?.addEventListener('abort', () => resolve(), { once: true }),
  );
  let ended = false;
  const allEnded = settled.then(() => {
    ended = true;
  });
  try {
    for (;;) {
      const record = await Promise.race([batches.get(batchId).catch(() => undefined), stopped]);
      if (signal?.aborted) return;
      if (record) write(progress.update(record, Date.now()));
      if (ended) return;
      await Promise.race([
        allEnded,
        stopped,
        sleep(ctx.pollIntervalMs ?? 500, undefined, { signal }).catch(() => undefined),
      ]);
    }
  } finally {
    signal?.removeEventListener('abort', close);
    close();
  }
}

/**
 * The engine of `npm run generate` as a request-file target: the file is stored in the engine's
 * bucket, whose owner starts it as the trigger does on AWS (S3 → EventBridge → trigger), and the
 * trigger's report (`<key>.result`) is read back. When the owner goes away before its report,
 * the file is stored again with the engine's new owner: lines already started report `duplicate`.
 */
export function engineRequestFileTarget(engine: LocalEngine): RequestFileTarget {
  return {
    get s3() {
      return engine.s3;
    },
    index: engine.index,
    get batches() {
      return engine.batches;
    },
    executions: engine.executions,
    async deliver(key, body, say) {
      // As Lambda does for the trigger on AWS: a delivery the trigger could not finish (its
      // report says why) is made again twice; lines it already started report `duplicate`.
      for (let attempt = 1; ; attempt += 1) {
        const { client, bucket } = engine.s3;
        let report: TriggerReport;
        try {
          // The report of an earlier delivery goes first: the one read below is this delivery's.
          await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: `${key}${REPORT_SUFFIX}` }));
          const put = await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
          const version = put.ETag?.replace(/"/g, '') ?? 'unversioned';
          report = await waitForReport(client, bucket, key, version);
        } catch (error) {
          if (!isConnectionError(error)) throw error;
          // The owner's S3 went away with it: this checks on the owner, and takes over if it is gone.
          await engine.health();
          continue;
        }
        if (!report.failure) return report;
        const reason = `${report.failure.name}: ${report.failure.message}`;
        if (attempt >= TRIGGER_ATTEMPTS)
          throw new Error(`${key}: the trigger could not finish it: ${reason}`);
        say(`warning: ${key}: the trigger could not finish it (${reason}); delivering it again`);
        await sleep(1000 * attempt);
      }
    },
  };
}

/** A delivery and Lambda's two retries of it. */
const TRIGGER_ATTEMPTS = 3;

const reportSchema = z.object({
  source: z.object({ bucket: z.string(), key: z.string(), version: z.string() }),
  batch: z.object({ id: z.string(), links: z.object({ self: z.string() }) }).optional(),
  results: z.array(
    z.object({
      line: z.number(),
      id: z.string().optional(),
      status: z.enum(['started', 'duplicate', 'rejected', 'canceled']),
      error: z.object({ type: z.string(), message: z.string(), details: z.unknown().optional() }).optional(),
    }),
  ),
  failure: z.object({ name: z.string(), message: z.string(), retried: z.string() }).optional(),
});

async function waitForReport(client: S3Client, bucket: string, key: string, version: string) {
  for (;;) {
    try {
      const object = await client.send(
        new GetObjectCommand({ Bucket: bucket, Key: `${key}${REPORT_SUFFIX}` }),
      );
      const report = reportSchema.parse(JSON.parse((await object.Body?.transformToString()) ?? ''));
      if (report.source.version === version) return report;
    } catch (error) {
      if ((error as Error).name !== 'NoSuchKey') throw error;
    }
    await sleep(200);
  }
}

function isConnectionError(error: unknown): boolean {
  const code =
    (error as { code?: string; cause?: { code?: string } }).code ??
    (error as { cause?: { code?: string } }).cause?.code;
  return (
    ['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT'].includes(code ?? '') ||
    (error as Error).name === 'TimeoutError'
  );
}
