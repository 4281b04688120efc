import type { Hono } from 'hono';
import { type ApiOptions, createApiApp } from '../../functions/api/app.js';
import type { BatchIndex } from '../../functions/shared/batch.js';
import type { Clock } from '../../functions/shared/clock.js';
import type { ExecutionService } from '../../functions/shared/execution-service.js';
import type { GenerationIndex } from '../../functions/shared/generation-index.js';
import { silentLogger } from '../../functions/shared/logger.js';
import type { ObjectStore } from '../../functions/shared/object-store.js';
import type { PresignedUrl } from '../../functions/shared/presigned-url.js';
import type { TaskState } from '../../functions/shared/workflow-state.js';

/** When every link of {@link fakePresign} expires. */
export const URL_EXPIRES_AT = '2026-03-01T13:34:56.789Z';

/** A presigner that signs nothing: a recognisable URL per key, one expiry for all. */
export const fakePresign = (key: string): Promise<PresignedUrl> =>
  Promise.resolve({ url: `https://signed.example/${key}`, expiresAt: URL_EXPIRES_AT });

/** A task state as Submit leaves it (queued, PENDING), with `overrides` applied. */
export function taskState(overrides: Partial<TaskState> = {}): TaskState {
  return {
    taskId: 'task-1',
    seed: 42,
    submitRequestId: 'req-submit',
    submittedAt: '2026-03-01T12:00:01.000Z',
    deadline: '2026-03-01T12:30:00.000Z',
    status: 'queued',
    dashscopeStatus: 'PENDING',
    times: { submit: '2026-03-01T12:00:01.000Z' },
    pollCount: 0,
    nextPollSeconds: 1,
    deadlineExceeded: false,
    ...overrides,
  };
}

/**
 * The API over the fake executions and the index they write to (and the batches, when given), with
 * {@link fakePresign}, a silent logger and the clock given.
 */
export function apiOver(
  world: {
    executions: ExecutionService;
    index: GenerationIndex;
    /** The batch routes are mounted with all three. */
    batches?: BatchIndex;
    objects?: ObjectStore;
    bucket?: string;
  },
  clock: Clock,
  options: ApiOptions = {},
): Hono {
  return createApiApp({ ...world, presign: fakePresign, clock, logger: silentLogger }, options);
}
