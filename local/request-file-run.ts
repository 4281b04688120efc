import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import * as z from 'zod';
import { type PersistResult, persistResultSchema } from '../functions/shared/workflow-state.js';
import type { DownloadedImage } from './cli/download.js';
import { EXIT } from './cli/errors.js';
import type { CliIo, CommandOutcome } from './cli/run.js';
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
  images?: CliImage[];
  manifest?: { key: string; path: string };
  error?: { type: string; message: string };
}

/** The part of a succeeded execution's output that says what was stored. */
const outputSchema = z.object({ result: persistResultSchema });

function pick(error: { type: string; message: string } | undefined): LineOutcome['error'] {
  return error ? { type: error.type, message: error.message } : undefined;
}

/** Copies a stored generation's images and manifest from the local S3 into `outDir/ID/`. */
export async function copyResult(
  pipeline: LocalPipeline,
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
 * Runs a request file through the local pipeline as `npm run generate -- --from` does: drops it
 * under `key` in the local S3, hands the trigger Lambda's code the "Object Created" event S3 would
 * send, runs every started generation to its end and copies each one's images into `outDir/ID/`.
 * Prints each line's outcome and where its images are (stderr), or returns them as the `--json`
 * document `{results}`.
 *
 * @returns exit 2 when a line was rejected, else 1 when a generation failed, else 0
 */
export async function runRequestFile(
  pipeline: LocalPipeline,
  key: string,
  body: Uint8Array,
  ctx: { readonly io: CliIo; readonly json: boolean; readonly outDir: string; readonly eventsFile?: string },
): Promise<CommandOutcome> {
  const say = (text: string) => ctx.json || ctx.io.stderr(`${text}\n`);
  const { report: reportOf } = await dropRequestFile(
    {
      s3: pipeline.s3.client,
      bucket: pipeline.s3.bucket,
      executions: pipeline.executions,
      index: pipeline.index,
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
    const execution = await pipeline.executions.describe(line.id);
    // The index holds the generation as the API shows it: the same status and error type.
    const record = await pipeline.index.get(line.id);
    let done: LineOutcome;
    if (execution?.status === 'SUCCEEDED') {
      const { result } = outputSchema.parse(execution.output);
      done = { line: line.line, id: line.id, ...(await copyResult(pipeline, ctx.outDir, line.id, result)) };
    } else {
      const error = record?.error ?? { type: 'internal_error', message: 'The generation left no record' };
      done = { line: line.line, id: line.id, status: record?.status ?? 'failed', error: pick(error) };
    }
    results.push(done);
    say(
      `  line ${done.line}: ${done.status}${done.id ? ` (${done.id})` : ''}${done.error ? `: ${done.error.message}` : ''}`,
    );
    for (const image of done.images ?? []) say(`    ${image.key}  →  ${image.path}`);
    if (done.manifest) say(`    ${done.manifest.key}  →  ${done.manifest.path}`);
  }
  const completions = pipeline.events.events.filter(
    (e) => e['detail-type'] !== 'Generation Request Rejected',
  );
  say(
    `${completions.length} completion event(s) ${ctx.eventsFile ? `appended to ${ctx.eventsFile}` : 'kept in memory'}; report: s3://${pipeline.s3.bucket}/${key}.result`,
  );
  const exitCode = results.some((r) => r.status === 'rejected')
    ? EXIT.usage
    : results.every((r) => r.status === 'succeeded' || r.status === 'partial')
      ? EXIT.ok
      : EXIT.failed;
  return { exitCode, document: { results } };
}
