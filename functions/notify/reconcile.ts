import * as z from 'zod';
import { WORKFLOW_ERROR } from '../shared/errors.js';
import type { ExecutionService } from '../shared/execution-service.js';
import { type GenerationIndex, type GenerationUpdate, STAGE } from '../shared/generation-index.js';
import { failedUpdate, finalUpdateOfState, indexedRequest, sourceOfId } from '../shared/index-updates.js';
import type { Logger } from '../shared/logger.js';
import type { NotifyInput } from './notify.js';

/** Step Functions' "Execution Status Change" event as EventBridge delivers it (the fields we use). */
export const statusChangeEventSchema = z.object({
  'detail-type': z.literal('Step Functions Execution Status Change'),
  detail: z.object({
    name: z.string().min(1),
    status: z.enum(['RUNNING', 'SUCCEEDED', 'FAILED', 'TIMED_OUT', 'ABORTED', 'PENDING_REDRIVE']),
    /** Epoch milliseconds. */
    startDate: z.number(),
    stopDate: z.number().nullish(),
    /** JSON text; null when it was too large to include (then read with DescribeExecution). */
    input: z.string().nullish(),
    output: z.string().nullish(),
    error: z.string().nullish(),
    cause: z.string().nullish(),
  }),
});
export type StatusChangeEvent = z.infer<typeof statusChangeEventSchema>;

export interface ReconcileDeps {
  readonly index: GenerationIndex;
  /** Reads an execution whose event left its input or output out (too large to include). */
  readonly executions: Pick<ExecutionService, 'describe'>;
  /**
   * Announces an end Notify did not (a stop, a timeout, a failure or success that never reached
   * it): the notifier, called with `lastAttempt` (an event EventBridge refuses is dead-lettered).
   */
  readonly announce: (input: NotifyInput) => Promise<unknown>;
  readonly logger: Logger;
}

export interface ReconcileResult {
  /** Whether the index changed: the workflow's own write was missing (or this is a new record). */
  readonly corrected: boolean;
  /** Whether this run announced the end (Notify had not). */
  readonly announced: boolean;
}

/**
 * The safety net of the generations index and of the announcements, run on every status change
 * of an execution:
 * - started: the generation is recorded `queued` if nothing recorded it yet (a StartExecution
 *   from anywhere, however it was started);
 * - ended: the index converges on the execution's real end when the workflow's own final write
 *   was lost (its stage rule makes this a no-op otherwise);
 * - ended without Notify having run: the end is announced, as Notify would ({@link unannounced}),
 *   once: a second delivery of the same status change finds the record ended and announces nothing.
 * Throws when the index cannot be written (before anything is announced), so Lambda retries the
 * event and then leaves it in the dead-letter queue.
 */
export async function reconcileExecution(
  event: StatusChangeEvent,
  deps: ReconcileDeps,
): Promise<ReconcileResult> {
  const { detail } = event;
  const id = detail.name;
  const createdAt = new Date(detail.startDate).toISOString();
  const endedAt = new Date(detail.stopDate ?? detail.startDate).toISOString();
  const needsDescribe = detail.input == null || (detail.status === 'SUCCEEDED' && detail.output == null);
  const described = needsDescribe ? await deps.executions.describe(id) : undefined;
  const request = detail.input != null ? parseJson(detail.input) : described?.input;
  const output = detail.output != null ? parseJson(detail.output) : described?.output;

  let update: GenerationUpdate;
  switch (detail.status) {
    case 'RUNNING':
    case 'PENDING_REDRIVE':
      update = {
        id,
        stage: STAGE.registered,
        status: 'queued',
        createdAt,
        source: sourceOfId(id),
        request: indexedRequest(request),
      };
      break;
    case 'SUCCEEDED': {
      const state = { ...(output as Record<string, unknown> | undefined), id, request };
      update = finalUpdateOfState('succeeded', state, createdAt, endedAt);
      break;
    }
    default: {
      const failure = failureOf(detail);
      update = failedUpdate(
        { id, request },
        { error: failure.Error, cause: failure.Cause },
        createdAt,
        endedAt,
      );
    }
  }

  const corrected = await deps.index.advance(update);
  if (corrected && update.stage !== STAGE.registered) {
    deps.logger.warn('Generations index corrected from the execution', {
      generationId: id,
      status: detail.status,
    });
  }
  const announcement = unannounced(detail, corrected, id, request, output);
  if (!announcement) return { corrected, announced: false };
  deps.logger.info('Announcing an end Notify did not', { generationId: id, status: detail.status });
  await deps.announce({ ...announcement, lastAttempt: true });
  return { corrected, announced: true };
}

/**
 * What Notify did not announce of an execution's end, or undefined. Notify's first act is the
 * generation's final index write, so an end the reconciler's own write had to record
 * (`corrected`) never reached Notify:
 * - **ABORTED:** always: a stopped execution never reaches Notify, and the API's cancel writes
 *   the end itself, so the record cannot tell;
 * - **TIMED_OUT, FAILED:** when `corrected` (a failure whose Notify state never ran: a Notify
 *   throttled or crashed to the end of its retries, a runtime error in a state without a Catch);
 * - **SUCCEEDED:** when `corrected` and the output has no `notification` (Notify's result, which
 *   it returned also when its own index write failed).
 * A later delivery of the same status change is not `corrected`: exactly once, but for ABORTED,
 * whose repeat carries the same ids (docs/events.md).
 */
function unannounced(
  detail: StatusChangeEvent['detail'],
  corrected: boolean,
  id: string,
  request: unknown,
  output: unknown,
): Pick<NotifyInput, 'outcome' | 'state'> | undefined {
  switch (detail.status) {
    case 'ABORTED':
      return { outcome: 'failed', state: { id, request, failure: failureOf(detail) } };
    case 'TIMED_OUT':
    case 'FAILED':
      return corrected
        ? { outcome: 'failed', state: { id, request, failure: failureOf(detail) } }
        : undefined;
    case 'SUCCEEDED': {
      const state = (output ?? {}) as Record<string, unknown>;
      if (!corrected || state.notification !== undefined) return undefined;
      return { outcome: 'succeeded', state: { ...state, id, request } };
    }
    default:
      return undefined;
  }
}

/** The error and cause an ended execution is recorded and announced with. */
function failureOf(detail: StatusChangeEvent['detail']): { Error: string; Cause?: string } {
  if (detail.status === 'TIMED_OUT') return { Error: 'States.Timeout', Cause: 'The workflow timed out' };
  if (detail.status === 'ABORTED') {
    // The API stops with DashScopeTaskCanceled; a stop from elsewhere may give no reason.
    return {
      Error: detail.error ?? WORKFLOW_ERROR.taskCanceled,
      Cause: detail.cause ?? 'The execution was stopped',
    };
  }
  return { Error: detail.error ?? 'Error', Cause: detail.cause ?? undefined };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
