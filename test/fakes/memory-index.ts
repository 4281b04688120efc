import {
  BatchConflictError,
  type BatchCounts,
  type BatchIndex,
  type BatchLinesQuery,
  type BatchRecord,
  batchOfId,
  countOf,
  emptyCounts,
  type NewBatch,
} from '../../functions/shared/batch.js';
import {
  compareNewestFirst,
  type GenerationIndex,
  type GenerationRecord,
  IndexUnavailableError,
  type ListPosition,
  RegistrationConflictError,
  type RegistrationOutcome,
  requestHashOf,
  STAGE,
} from '../../functions/shared/generation-index.js';

interface Stored {
  record: GenerationRecord;
  requestHash?: string;
}

/**
 * An in-memory {@link GenerationIndex} for unit tests, held to the DynamoDB adapter by the contract
 * suite (test/contract). Tests may seed records directly and make every call fail (`failure`).
 */
export class MemoryGenerationIndex implements GenerationIndex {
  readonly #items = new Map<string, Stored>();
  readonly calls = { get: 0, register: 0, advance: 0, list: 0 };
  /** When set, every method rejects with it (an outage of the index). */
  failure?: Error;

  /** Puts a record as it is (tests): no stage rule applies. */
  seed(record: GenerationRecord): void {
    this.#items.set(record.id, {
      record: structuredClone(record),
      requestHash: record.request ? requestHashOf(record.request) : undefined,
    });
  }

  async get(id: string): Promise<GenerationRecord | undefined> {
    this.calls.get++;
    this.#failIfAsked();
    const stored = this.#items.get(id);
    return stored ? structuredClone(stored.record) : undefined;
  }

  async register(registration: Parameters<GenerationIndex['register']>[0]): Promise<RegistrationOutcome> {
    this.calls.register++;
    this.#failIfAsked();
    const hash = requestHashOf(registration.request);
    const stored = this.#items.get(registration.id);
    if (stored) {
      if (stored.requestHash !== undefined && stored.requestHash !== hash) {
        throw new RegistrationConflictError(`Generation ${registration.id} exists with another request`);
      }
      const existing = structuredClone(stored.record);
      stored.requestHash ??= hash;
      stored.record.request ??= structuredClone(registration.request);
      if (registration.caller) stored.record.caller ??= registration.caller;
      return { existing };
    }
    const now = new Date().toISOString();
    this.#items.set(registration.id, {
      requestHash: hash,
      record: {
        id: registration.id,
        createdAt: new Date(registration.createdAt).toISOString(),
        updatedAt: now,
        source: registration.source,
        ...(registration.caller ? { caller: registration.caller } : {}),
        status: 'queued',
        stage: STAGE.registered,
        request: structuredClone(registration.request),
      },
    });
    return {};
  }

  async advance(update: Parameters<GenerationIndex['advance']>[0]): Promise<boolean> {
    this.calls.advance++;
    this.#failIfAsked();
    const stored = this.#items.get(update.id);
    if (stored && stored.record.stage >= update.stage) return false;
    const base: GenerationRecord = stored?.record ?? {
      id: update.id,
      createdAt: new Date(update.createdAt).toISOString(),
      updatedAt: '',
      source: update.source,
      status: update.status,
      stage: update.stage,
    };
    const { id: _, createdAt: __, source: ___, request, ...changes } = structuredClone(update);
    const defined = Object.fromEntries(Object.entries(changes).filter(([, value]) => value !== undefined));
    const record: GenerationRecord = {
      ...base,
      ...defined,
      updatedAt: new Date().toISOString(),
      ...(base.request === undefined && request ? { request } : {}),
    };
    this.#items.set(update.id, {
      record,
      requestHash: stored?.requestHash ?? (request ? requestHashOf(request) : undefined),
    });
    return true;
  }

  async list(query: Parameters<GenerationIndex['list']>[0]) {
    this.calls.list++;
    this.#failIfAsked();
    const matching = [...this.#items.values()]
      .map((stored) => stored.record)
      .filter((record) => query.status === undefined || record.status === query.status)
      .filter((record) => !query.after || compareNewestFirst(query.after, record) < 0)
      .sort(compareNewestFirst);
    return {
      items: matching.slice(0, query.limit).map((record) => structuredClone(record)),
      more: matching.length > query.limit,
    };
  }

  /** Every record as it stands (the batches beside it count from these). */
  records(): GenerationRecord[] {
    this.#failIfAsked();
    return [...this.#items.values()].map((stored) => structuredClone(stored.record));
  }

  #failIfAsked(): void {
    if (this.failure) throw new IndexUnavailableError(this.failure.message, { cause: this.failure });
  }
}

interface StoredBatch {
  record: Omit<BatchRecord, 'counts'>;
  total: number;
  rejected: number;
  finalCounts?: BatchCounts;
}

/**
 * An in-memory {@link BatchIndex} over a {@link MemoryGenerationIndex}: a batch's counts are its
 * generations' (by their ids), as the DynamoDB adapter counts them. Held to it by
 * test/contract/batch-index.test.ts.
 */
export class MemoryBatchIndex implements BatchIndex {
  readonly #batches = new Map<string, StoredBatch>();

  constructor(private readonly generations: MemoryGenerationIndex) {}

  async create(batch: NewBatch) {
    const stored = this.#batches.get(batch.id);
    if (stored) {
      if (stored.record.fingerprint !== batch.fingerprint) {
        throw new BatchConflictError(`Batch ${batch.id} exists with other requests`);
      }
      return { existing: this.#recordOf(stored) };
    }
    const { total, rejected, ...rest } = batch;
    this.#batches.set(batch.id, {
      record: structuredClone({
        ...rest,
        createdAt: new Date(batch.createdAt).toISOString(),
        status: 'in_progress',
      }),
      total,
      rejected,
    });
    return {};
  }

  async get(id: string) {
    const stored = this.#batches.get(id);
    return stored ? this.#recordOf(stored) : undefined;
  }

  async list(query: { limit: number; after?: ListPosition }) {
    const matching = [...this.#batches.values()]
      .map((stored) => stored.record)
      .filter((record) => !query.after || compareNewestFirst(query.after, record) < 0)
      .sort(compareNewestFirst);
    return {
      items: matching
        .slice(0, query.limit)
        .map((record) => this.#recordOf(this.#batches.get(record.id) as StoredBatch)),
      more: matching.length > query.limit,
    };
  }

  async lines(batchId: string, query: BatchLinesQuery) {
    const matching = this.#linesOf(batchId)
      .filter(({ record }) => query.count === undefined || countOf(record) === query.count)
      .filter(({ line }) => query.afterLine === undefined || line > query.afterLine);
    return {
      items: matching.slice(0, query.limit).map(({ record }) => record),
      more: matching.length > query.limit,
    };
  }

  async allEnded(batchId: string) {
    const stored = this.#batches.get(batchId);
    if (!stored) return false;
    const lines = this.#linesOf(batchId);
    return (
      (lines.length >= stored.total - stored.rejected || stored.record.status !== 'in_progress') &&
      lines.every(({ record }) => record.status !== 'queued' && record.status !== 'running')
    );
  }

  async peek(id: string) {
    const stored = this.#batches.get(id);
    return stored ? structuredClone(stored.record) : undefined;
  }

  async markCancelling(id: string) {
    const stored = this.#batches.get(id);
    if (!stored) return undefined;
    if (stored.record.status === 'in_progress' && !stored.record.completion)
      stored.record.status = 'cancelling';
    return structuredClone(stored.record);
  }

  async claimCompletion(id: string, owner: string, now: string, staleBefore: string) {
    const stored = this.#batches.get(id);
    if (!stored || (stored.record.status !== 'in_progress' && stored.record.status !== 'cancelling'))
      return undefined;
    const claim = stored.record.completion;
    if (claim && claim.owner !== owner && !(claim.claimedAt < staleBefore)) return undefined;
    stored.record.completion = { owner, claimedAt: now };
    return this.#recordOf(stored);
  }

  async complete(
    id: string,
    owner: string,
    end: { status: 'completed' | 'cancelled'; at: string; resultsKey: string; counts: BatchCounts },
  ) {
    const stored = this.#batches.get(id);
    if (!stored || stored.record.completion?.owner !== owner) return false;
    const { completion: _, ...rest } = stored.record;
    stored.record = { ...rest, status: end.status, completedAt: end.at, resultsKey: end.resultsKey };
    stored.finalCounts = { ...end.counts };
    return true;
  }

  #linesOf(batchId: string) {
    return this.generations
      .records()
      .flatMap((record) => {
        const batch = batchOfId(record.id);
        return batch?.batchId === batchId ? [{ line: batch.line, record }] : [];
      })
      .sort((a, b) => a.line - b.line);
  }

  #recordOf(stored: StoredBatch): BatchRecord {
    const record = structuredClone(stored.record);
    if (stored.finalCounts) return { ...record, counts: { ...stored.finalCounts } };
    const counts = emptyCounts(stored.total, stored.rejected);
    const lines = this.#linesOf(record.id);
    for (const { record: line } of lines) counts[countOf(line)] += 1;
    // Lines not registered yet wait, or once the batch is cancelled never start: canceled.
    counts[record.status === 'in_progress' ? 'waiting' : 'canceled'] += Math.max(
      0,
      stored.total - stored.rejected - lines.length,
    );
    return { ...record, counts };
  }
}
