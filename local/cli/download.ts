import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { type GenerationView, generationViewSchema } from '../../functions/api/schemas.js';
import type { ApiClient } from './api-client.js';
import { GenerationFailedError, UnexpectedAnswerError } from './errors.js';
import type { CliIo } from './run.js';

/** One downloaded image, as `generate --json` and `download --json` print it. */
export interface DownloadedImage {
  index: number;
  key: string;
  /** Absolute path of the file written. */
  path: string;
  bytes: number;
  sha256: string;
  contentType: string;
  seed: number;
}

/** The `--json` document of `generate` and `download`. */
export interface DownloadDocument {
  id: string;
  status: GenerationView['status'];
  /** The folder the images were written to. */
  dir: string;
  images: DownloadedImage[];
  failedImages: NonNullable<GenerationView['failedImages']>;
}

/** The failure document of `generate` and `download`: the same fields, no images, and the error. */
export function generationFailureDocument(
  described: { type: string; message: string },
  error: unknown,
): Record<string, unknown> {
  if (error instanceof GenerationFailedError)
    return { id: error.id, status: error.status, images: [], error: described };
  return { error: described };
}

export interface FollowOptions {
  readonly io: CliIo;
  /** No progress lines (under `--json`). */
  readonly quiet: boolean;
  /** @default 1000 */
  readonly pollIntervalMs?: number;
  readonly sleep?: (ms: number) => Promise<void>;
}

/** ` · queue #3 (batch), starts ~14:02:10` while the generation waits for admission; else empty. */
export function queueText(view: GenerationView): string {
  if (!view.queue) return '';
  const at = new Date(view.queue.estimatedStartAt).toISOString().slice(11, 19);
  return ` · queue #${view.queue.position + 1} (${view.queue.lane}), starts ~${at} UTC`;
}

/** Polls the generation until it has ended, with a progress line on stderr. */
export async function followGeneration(
  api: ApiClient,
  id: string,
  options: FollowOptions,
): Promise<GenerationView> {
  const { io, quiet } = options;
  const sleep = options.sleep ?? ((ms) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const started = Date.now();
  let last = '';
  for (;;) {
    const { parsed: view } = await api.send(
      { method: 'GET', path: `/v1/generations/${encodeURIComponent(id)}` },
      generationViewSchema,
    );
    const line = `[${((Date.now() - started) / 1000).toFixed(1).padStart(6)}s] ${view.status} · ${view.progress.done}/${view.progress.total} images${queueText(view)}`;
    if (!quiet && line !== last) io.stderr(io.stderrIsTTY ? `\r\x1b[2K${line}` : `${line}\n`);
    last = line;
    if (view.status !== 'queued' && view.status !== 'running') {
      if (!quiet && io.stderrIsTTY) io.stderr('\n');
      return view;
    }
    await sleep(options.pollIntervalMs ?? 1000);
  }
}

/**
 * Downloads an ended generation's images into `outDir/ID/`, checking each one's SHA-256, and
 * prints each file's path (unless `quiet`).
 *
 * @throws GenerationFailedError when the generation has no images (failed, canceled, expired)
 * @throws UnexpectedAnswerError when an image URL does not answer or its bytes differ
 */
export async function downloadImages(
  view: GenerationView,
  outDir: string,
  options: { readonly io: CliIo; readonly quiet: boolean; readonly fetch?: typeof fetch },
): Promise<DownloadDocument> {
  if (view.status !== 'succeeded' || !view.images) {
    const type = view.error?.type ?? view.status;
    const reason = view.error ? `${view.error.type}: ${view.error.message}` : view.status;
    throw new GenerationFailedError(
      view.id,
      view.status,
      type,
      `generation ${view.id} ${view.status}: ${reason}`,
    );
  }
  const fetchFn = options.fetch ?? fetch;
  const dir = path.resolve(outDir, view.id);
  await mkdir(dir, { recursive: true });
  const images: DownloadedImage[] = [];
  for (const image of view.images) {
    const response = await fetchFn(image.url);
    if (!response.ok)
      throw new UnexpectedAnswerError(`download of image ${image.index} answered HTTP ${response.status}`);
    const bytes = Buffer.from(await response.arrayBuffer());
    if (createHash('sha256').update(bytes).digest('hex') !== image.sha256)
      throw new UnexpectedAnswerError(`image ${image.index} arrived corrupted (its SHA-256 differs)`);
    const file = path.join(dir, path.basename(image.key));
    await writeFile(file, bytes);
    const { index, key, sha256, contentType, seed } = image;
    images.push({ index, key, path: file, bytes: bytes.length, sha256, contentType, seed });
    if (!options.quiet) options.io.stdout(`${file}  (${bytes.length} bytes, seed ${seed})\n`);
  }
  const failedImages = view.failedImages ?? [];
  if (!options.quiet)
    for (const failure of failedImages)
      options.io.stderr(`image ${failure.index} not stored: ${failure.type}: ${failure.message}\n`);
  return { id: view.id, status: view.status, dir, images, failedImages };
}
