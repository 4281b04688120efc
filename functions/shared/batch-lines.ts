import { type BatchIndex, type BatchRecord, batchLineId, type NewBatch, rejectedKeyOf } from './batch.js';
import type { Clock } from './clock.js';
import { eachAtMost } from './each-at-most.js';
import { ExecutionAlreadyExistsError, type ExecutionService } from './execution-service.js';
import { FINAL_STAGE, type GenerationIndex, type GenerationSource } from './generation-index.js';
import type { GenerationRequest } from './generation-request.js';
import type { ObjectStore } from './object-store.js';

/** One line of a batch as parsed: a request, or why it is not one. */
export type BatchLine =
  | { readonly line: number; readonly request: GenerationRequest }
  | {
      readonly line: number;
      readonly error: {
        readonly type: string;
        readonly message: string;
        readonly details?: unknown;
      };
    };

/** What happened to one line: `duplicate` when an earlier delivery already started it. */
export interface BatchLineResult {
  readonly line: number;
  readonly id?: string;
  readonly status: 'started' | 'duplicate' | 'rejected' | 'canceled';
  readonly error?: { readonly type: string; readonly message: string; readonly details?: unknown };
}

export interface BatchStartDeps {
  readonly batches: Pick<BatchIndex, 'create' | 'get' | 'peek'>;
  readonly index: Pick<GenerationIndex, 'get' | 'register'>;
  /** Starts each line; describes one only when its record already exists. */
  readonly executions: Pick<ExecutionService, 'start' | 'describe'>;
  /** Where the rejected lines are kept for the results (`batches/{id}/rejected.json`). */
  readonly objects: Pick<ObjectStore, 'putJson'>;
  readonly bucket: string;
  readonly clock: Clock;
}

/** The rejected lines of a batch, as kept for its results. */
export interface RejectedLines {
  readonly lines: readonly { readonly line: number; readonly error: { type: string; message: string } }[];
}

/**
 * Creates a batch (or finds it: a replay, a redelivered file) with its rejected lines kept for
 * the results. Throws BatchConflictError when its id exists with other requests.
 */
export async function createBatch(
  batch: Omit<NewBatch, 'total' | 'rejected'>,
  lines: readonly BatchLine[],
  deps: Pick<BatchStartDeps, 'batches' | 'objects' | 'bucket'>,
): Promise<{ readonly batch: BatchRecord; readonly created: boolean }> {
  const rejected = lines.flatMap((line) =>
    'error' in line
      ? [{ line: line.line, error: { type: line.error.type, message: line.error.message } }]
      : [],
  );
  // The create decides whose batch it is (a conflicting one throws before writing anything); the
  // rejected lines follow, before any line starts, so whoever completes the batch finds them. A
  // replay or a redelivery writes the same again (one that died between the two leaves none).
  const { existing } = await deps.batches.create({
    ...batch,
    total: lines.length,
    rejected: rejected.length,
  });
  if (rejected.length > 0) {
    await deps.objects.putJson({ bucket: deps.bucket, key: rejectedKeyOf(batch.id) }, {
      lines: rejected,
    } satisfies RejectedLines);
  }
  if (existing) return { batch: existing, created: false };
  const created = await deps.batches.get(batch.id);
  if (!created) throw new Error(`Batch ${batch.id} vanished after its creation`);
  return { batch: created, created: true };
}

/**
 * Registers and starts every valid line of a batch as generation `<batch id>-<line>`, each once,
 * `concurrency` at a time in line order (so they enter the queue nearly, not strictly, in order): a line an earlier delivery (or replay) started is reported `duplicate`, one it
 * registered but never started is started now. Appends each line's outcome to `results` as it
 * goes, so a caller that fails half way can report what was done. A line of a batch cancelled
 * meanwhile is not started (`canceled`). @default concurrency 8
 */
export async function startBatchLines(
  batchId: string,
  source: GenerationSource,
  lines: readonly BatchLine[],
  deps: BatchStartDeps,
  results: BatchLineResult[] = [],
  concurrency = 8,
): Promise<BatchLineResult[]> {
  const byLine = new Map<number, BatchLineResult>();
  // A cancelled batch starts no more lines: its status is read again at most once a second.
  // Every worker waits on the same read, so none starts a line while a read is under way.
  let checkedAt = Number.NEGATIVE_INFINITY;
  let status: Promise<boolean> = Promise.resolve(false);
  const isCancelled = async () => {
    if (!(await status) && deps.clock.now() - checkedAt >= 1000) {
      checkedAt = deps.clock.now();
      status = deps.batches
        .peek(batchId)
        .then((batch) => batch?.status === 'cancelling' || batch?.status === 'cancelled');
    }
    return status;
  };
  try {
    // A failure starts no further line; those under way finish.
    await eachAtMost(lines, concurrency, async (line) => {
      byLine.set(line.line, await startLine(batchId, source, line, deps, isCancelled));
    });
  } finally {
    results.push(...[...byLine.values()].sort((a, b) => a.line - b.line));
  }
  return results;
}

async function startLine(
  batchId: string,
  source: GenerationSource,
  parsed: BatchLine,
  deps: BatchStartDeps,
  isCancelled: () => Promise<boolean>,
): Promise<BatchLineResult> {
  if ('error' in parsed) return { line: parsed.line, status: 'rejected', error: parsed.error };
  const id = batchLineId(batchId, parsed.line);
  // Started before: it has an execution, or it ended without one (cancelled before it started).
  const existing = await deps.index.get(id);
  if (existing && (existing.stage >= FINAL_STAGE || (await deps.executions.describe(id)) !== undefined)) {
    return { line: parsed.line, id, status: 'duplicate' };
  }
  // Cancelled before this line started: it never starts (the batch counts it canceled).
  if (await isCancelled()) return { line: parsed.line, id, status: 'canceled' };
  try {
    await deps.index.register({
      id,
      createdAt: new Date(deps.clock.now()).toISOString(),
      source,
      request: parsed.request as Record<string, unknown>,
    });
    await deps.executions.start(id, parsed.request);
    return { line: parsed.line, id, status: 'started' };
  } catch (error) {
    if (!(error instanceof ExecutionAlreadyExistsError)) throw error;
    return { line: parsed.line, id, status: 'duplicate' };
  }
}
