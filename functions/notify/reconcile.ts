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
  /** Announces an end the workflow itself could not (a timeout, a stop): the notifier. */
  readonly announce: (input: NotifyInput) => Promise<unknown>;
  readonly logger: Logger;
}

export interface ReconcileResult {
  /** Whether the index changed: the workflow's own write was missing (or this is a new record). */
  readonly corrected: boolean;
  readonly announced: boolean;
}

/**
 * The safety net of the generations index, run on every status change of an execution:
 * - started: the generation is recorded `queued` if nothing recorded it yet (a StartExecution
 *   from anywhere, however it was started);
 * - ended: the index converges on the execution's real end when the workflow's own final write
 *   was lost (its stage rule makes this a no-op otherwise);
 * - timed out or stopped (the workflow's Notify never ran): the end is announced, as Notify would.
 * Throws when the index cannot be written, so EventBridge delivers the event again.
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

  // Ends the workflow's own states never saw (Notify did not run): the reconciler announces them.
  const unannounced = unannouncedFailure(detail);
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
      const failure = unannounced ?? { Error: detail.error ?? 'Error', Cause: detail.cause ?? undefined };
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
  if (!unannounced) return { corrected, announced: false };
  await deps.announce({ outcome: 'failed', state: { id, request, failure: unannounced } });
  return { corrected, announced: true };
}

/** The failure of an execution that timed out or was stopped; undefined for any other status. */
function unannouncedFailure(
  detail: StatusChangeEvent['detail'],
): { Error: string; Cause: string } | undefined {
  if (detail.status === 'TIMED_OUT') return { Error: 'States.Timeout', Cause: 'The workflow timed out' };
  if (detail.status !== 'ABORTED') return undefined;
  // The API stops with DashScopeTaskCanceled; a stop from elsewhere may give no reason.
  return {
    Error: detail.error ?? WORKFLOW_ERROR.taskCanceled,
    Cause: detail.cause ?? 'The execution was stopped',
  };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
