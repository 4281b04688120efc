import type { Clock } from '../functions/shared/clock.js';
import type { Logger } from '../functions/shared/logger.js';
import type { AbortedOutcome, ExecutionOutcome } from './runner.js';
import type { Handler } from './task-states.js';

/** The parts of a status-change event's detail that depend on how the execution went. */
export interface StatusChange {
  readonly status: 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'ABORTED';
  readonly input: string;
  readonly output?: string | null;
  readonly error?: string | null;
  readonly cause?: string | null;
}

/** Plays one status change of execution `id` (started at `startDate`) to the reconciler. */
export type StatusChanged = (id: string, startDate: number, change: StatusChange) => Promise<void>;

/**
 * Step Functions' status-change events, played to the reconciler as the stack's rule delivers
 * them on AWS (nothing without one). Never throws: on AWS, EventBridge would deliver the event
 * again; locally the next run converges.
 */
export function statusChanges(reconcile: Handler | undefined, clock: Clock, logger: Logger): StatusChanged {
  return async (id, startDate, change) => {
    if (!reconcile) return;
    try {
      await reconcile({
        'detail-type': 'Step Functions Execution Status Change',
        detail: {
          name: id,
          startDate,
          stopDate: change.status === 'RUNNING' ? null : clock.now(),
          ...change,
        },
      });
    } catch (error) {
      logger.warn('Status change not reconciled', { generationId: id, reason: String(error) });
    }
  };
}

/** The status change of an execution's end: its output, or its error and cause (a stop's, if given). */
export function endChange(
  ended: ExecutionOutcome | AbortedOutcome,
  input: string,
  stopReason: { error: string; cause: string } | undefined,
): StatusChange {
  if (ended.status === 'SUCCEEDED')
    return { status: 'SUCCEEDED', input, output: JSON.stringify(ended.output) };
  if (ended.status === 'FAILED') return { status: 'FAILED', input, error: ended.error, cause: ended.cause };
  return { status: 'ABORTED', input, error: stopReason?.error ?? null, cause: stopReason?.cause ?? null };
}
