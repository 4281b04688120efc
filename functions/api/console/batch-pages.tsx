import { createHash } from 'node:crypto';
import type { Context, Hono } from 'hono';
import * as z from 'zod';
import { type BatchRecord, batchIdSchema, batchOfId, rejectedKeyOf } from '../../shared/batch.js';
import { describeError } from '../../shared/errors.js';
import type { GenerationRecord } from '../../shared/generation-index.js';
import { type BatchesDeps, type BatchView, cancelBatch, listBatches, viewOfBatch } from '../batches.js';
import {
  decodeCursor,
  decodeLineCursor,
  encodeCursor,
  encodeLineCursor,
  InvalidCursorError,
} from '../cursor.js';
import { type GenerationsDeps, listGenerationViews } from '../generations.js';
import { HttpError } from '../http-error.js';
import {
  BatchesPage,
  type BatchLiveProps,
  BatchLiveSection,
  BatchPage,
  BatchRow,
  batchesPath,
  batchPageOf,
  type FailedLine,
  type RejectedLine,
} from './batch-views.js';
import { GALLERY_PAGE_SIZE } from './browse-routes.js';
import { MessagePage } from './form-views.js';
import { page } from './page.js';
import { relativeFromNow } from './relative-time.js';

/** Batches per page of the list. */
export const BATCHES_PAGE_SIZE = 20;
/** Failed and canceled lines a batch's page lists (the results file has them all). */
export const FAILURES_SHOWN = 50;
/** Rejected lines a batch's page lists. */
export const REJECTED_SHOWN = 100;

/** A batch the console has no page for: the console's 404 page says it. */
const noSuchBatch = (): HttpError => new HttpError(404, 'not_found', 'There is no such batch.');

const badPageLink = (error: InvalidCursorError, start: string) =>
  new HttpError(400, 'invalid_request', `This page link ${error.message}; start again from ${start}.`);

const listQuerySchema = z.strictObject({ cursor: z.string().min(1).max(4096).optional() });
const pageQuerySchema = listQuerySchema.extend({ seen: z.string().max(64).optional() });

/** `batches/<id>/rejected.json`, as the batch's creator wrote it. */
const rejectedFileSchema = z.object({
  lines: z.array(
    z.object({ line: z.int().positive(), error: z.object({ type: z.string(), message: z.string() }) }),
  ),
});

/** The batches' deps when the app has them (the batches, the objects and the bucket). */
export function batchesDepsOf(deps: GenerationsDeps): BatchesDeps | undefined {
  const { batches, objects, bucket } = deps;
  return batches && objects && bucket ? { ...deps, batches, objects, bucket } : undefined;
}

/**
 * The console's batch pages: the list (`/console/batches`, newest first, paged by the API's
 * cursors, each batch in progress followed live), a batch's page with its progress, failures and
 * generations (followed live as one section, which the fragment answers with 204 while nothing in
 * it changed), and its cancel. Without batches in the deps, the list says so.
 */
export function mountBatchPages(app: Hono, generationsDeps: GenerationsDeps, signedIn: boolean): void {
  const deps = batchesDepsOf(generationsDeps);
  app.get(`${batchesPath}/`, (c) => c.redirect(batchesPath, 301));
  if (!deps) {
    app.get(batchesPath, (c) =>
      page(c, <MessagePage title="Batches" message="This server keeps no batches." signedIn={signedIn} />),
    );
    return;
  }

  app.get(batchesPath, async (c) => {
    const query = listQuerySchema.safeParse(nonEmpty(c.req.query()));
    if (!query.success)
      throw new HttpError(400, 'invalid_request', 'Only a cursor from this page is understood.');
    let after: { createdAt: string; id: string } | undefined;
    try {
      after = query.data.cursor ? decodeCursor(query.data.cursor, undefined) : undefined;
    } catch (error) {
      if (!(error instanceof InvalidCursorError)) throw error;
      throw badPageLink(error, 'the newest');
    }
    const listed = await listBatches({ limit: BATCHES_PAGE_SIZE, after }, deps);
    const nextCursor = listed.more && listed.last ? encodeCursor(undefined, listed.last) : undefined;
    return page(
      c,
      <BatchesPage
        items={listed.data}
        nextCursor={nextCursor}
        paged={after !== undefined}
        signedIn={signedIn}
        now={deps.clock.now()}
      />,
    );
  });

  app.get(`${batchesPath}/:id`, async (c) => {
    const record = await batchOf(c, deps);
    const state = await liveStateOf(record, pageQueryOf(c).cursor, deps);
    const [props, rejected] = await Promise.all([livePropsOf(state, deps), rejectedOf(record, deps)]);
    return page(c, <BatchPage {...props} rejected={rejected} signedIn={signedIn} />);
  });

  app.get(`${batchesPath}/:id/live`, async (c) => {
    const record = await batchOf(c, deps);
    const query = pageQueryOf(c);
    const state = await liveStateOf(record, query.cursor, deps);
    if (query.seen === state.signature) return c.body(null, 204);
    return c.html(<BatchLiveSection {...(await livePropsOf(state, deps))} />);
  });

  app.get(`${batchesPath}/:id/row`, async (c) =>
    c.html(<BatchRow batch={await viewOfBatch(await batchOf(c, deps), deps)} now={deps.clock.now()} />),
  );

  app.post(`${batchesPath}/:id/cancel`, async (c) => {
    const id = c.req.param('id');
    const batch = batchIdSchema.safeParse(id).success ? await cancelBatch(id, deps) : undefined;
    if (!batch) throw noSuchBatch();
    return c.redirect(batchPageOf(batch.id), 303);
  });
}

const nonEmpty = (query: Record<string, string>) =>
  Object.fromEntries(Object.entries(query).filter(([, value]) => value !== ''));

function pageQueryOf(c: Context): z.infer<typeof pageQuerySchema> {
  const query = pageQuerySchema.safeParse(nonEmpty(c.req.query()));
  if (!query.success)
    throw new HttpError(400, 'invalid_request', 'Only a cursor from this page is understood.');
  return query.data;
}

/** The batch a `:id` route names; a 404 when there is none. */
async function batchOf(c: Context, deps: BatchesDeps): Promise<BatchRecord> {
  const id = c.req.param('id') ?? '';
  const record = batchIdSchema.safeParse(id).success ? await deps.batches.get(id) : undefined;
  if (!record) throw noSuchBatch();
  return record;
}

interface LiveState {
  readonly record: BatchRecord;
  readonly batch: BatchView;
  readonly now: number;
  readonly lines: readonly GenerationRecord[];
  readonly cursor?: string;
  readonly nextCursor?: string;
  readonly failures: BatchLiveProps['failures'];
  readonly signature: string;
}

/** What the live section shows, read, and its signature: no link is signed yet. */
async function liveStateOf(
  record: BatchRecord,
  cursor: string | undefined,
  deps: BatchesDeps,
): Promise<LiveState> {
  let afterLine: number | undefined;
  try {
    afterLine = cursor ? decodeLineCursor(cursor, record.id, undefined) : undefined;
  } catch (error) {
    if (!(error instanceof InvalidCursorError)) throw error;
    throw badPageLink(error, 'its first lines');
  }
  const [batch, lines, failures] = await Promise.all([
    viewOfBatch(record, deps),
    deps.batches.lines(record.id, { limit: GALLERY_PAGE_SIZE, afterLine }),
    failuresOf(record, deps),
  ]);
  const now = deps.clock.now();
  const lastLine = batchOfId(lines.items.at(-1)?.id ?? '')?.line;
  const nextCursor = lines.more && lastLine ? encodeLineCursor(record.id, undefined, lastLine) : undefined;
  const signature = createHash('sha256')
    .update(
      JSON.stringify([
        batch.status,
        batch.counts,
        batch.completedAt ?? null,
        batch.estimatedCompletionAt ? relativeFromNow(batch.estimatedCompletionAt, now) : null,
        record.resultsKey ?? null,
        lines.items.map((line) => [line.id, line.status, line.progress ?? null, line.images?.length ?? 0]),
        nextCursor ?? null,
        failures,
      ]),
    )
    .digest('base64url')
    .slice(0, 22);
  return { record, batch, now, lines: lines.items, cursor, nextCursor, failures, signature };
}

/** The live section's props: the generations' image links and the results link signed. */
async function livePropsOf(state: LiveState, deps: BatchesDeps): Promise<BatchLiveProps> {
  const { resultsKey } = state.record;
  const [items, results] = await Promise.all([
    listGenerationViews(state.lines, deps, { presign: true }),
    resultsKey ? deps.presign(resultsKey) : undefined,
  ]);
  return {
    batch: state.batch,
    now: state.now,
    items,
    ...(state.cursor ? { cursor: state.cursor } : {}),
    ...(state.nextCursor ? { nextCursor: state.nextCursor } : {}),
    failures: state.failures,
    ...(results ? { resultsUrl: results.url } : {}),
    signature: state.signature,
  };
}

/** Its failed and canceled generations, the first {@link FAILURES_SHOWN} in line order. */
async function failuresOf(record: BatchRecord, deps: BatchesDeps): Promise<BatchLiveProps['failures']> {
  const counts = (['failed', 'canceled'] as const).filter((count) => record.counts[count] > 0);
  const pages = await Promise.all(
    counts.map((count) => deps.batches.lines(record.id, { count, limit: FAILURES_SHOWN })),
  );
  const lines: FailedLine[] = pages
    .flatMap((found) => found.items)
    .map((line) => ({
      line: batchOfId(line.id)?.line ?? 0,
      id: line.id,
      status: line.status,
      ...(line.error ? { error: { type: line.error.type, message: line.error.message } } : {}),
    }))
    .sort((a, b) => a.line - b.line);
  return {
    lines: lines.slice(0, FAILURES_SHOWN),
    more: lines.length > FAILURES_SHOWN || pages.some((found) => found.more),
  };
}

/** The lines it rejected, from `rejected.json`: the first {@link REJECTED_SHOWN}, in line order. */
async function rejectedOf(record: BatchRecord, deps: BatchesDeps) {
  if (record.counts.rejected <= 0) return { lines: [], more: false, unreadable: false };
  try {
    const text = await deps.objects.getText({ bucket: deps.bucket, key: rejectedKeyOf(record.id) });
    const lines: RejectedLine[] = rejectedFileSchema
      .parse(JSON.parse(text))
      .lines.sort((a, b) => a.line - b.line);
    return { lines: lines.slice(0, REJECTED_SHOWN), more: lines.length > REJECTED_SHOWN, unreadable: false };
  } catch (error) {
    deps.logger.warn('Rejected lines of the batch not read', {
      batchId: record.id,
      reason: describeError(error),
    });
    return { lines: [], more: false, unreadable: true };
  }
}
