import {
  compareNewestFirst,
  type GenerationIndex,
  type GenerationRecord,
  IndexUnavailableError,
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

  #failIfAsked(): void {
    if (this.failure) throw new IndexUnavailableError(this.failure.message, { cause: this.failure });
  }
}
