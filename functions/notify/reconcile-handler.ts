import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { S3Client } from '@aws-sdk/client-s3';
import { SFNClient } from '@aws-sdk/client-sfn';
import type { Admission } from '../shared/admission.js';
import { admissionFromConfig } from '../shared/aws/admission-from-env.js';
import { createDynamoBatchIndex } from '../shared/aws/dynamodb-batches.js';
import { createDynamoGenerationIndex } from '../shared/aws/dynamodb-index.js';
import { createEventBridgePublisher } from '../shared/aws/eventbridge-publisher.js';
import { createSfnExecutionService } from '../shared/aws/sfn-execution-service.js';
import type { ExecutionService } from '../shared/execution-service.js';
import type { GenerationIndex } from '../shared/generation-index.js';
import { lambdaEntry } from '../shared/lambda-entry.js';
import { withKeys } from '../shared/logger.js';
import { METRIC, type Metrics, noMetrics, SERVICE } from '../shared/metrics.js';
import { parseEvent } from '../shared/parse-event.js';
import { releaseSlot } from '../shared/slot-life.js';
import { type BatchCompletionDeps, completeBatchOf } from './batch-completion.js';
import { type NotifyRuntime, notifyDeps, sqsDeadLetters } from './handler.js';
import { notifyCompletion } from './notify.js';
import {
  type ReconcileDeps,
  type ReconcileResult,
  reconcileExecution,
  statusChangeEventSchema,
} from './reconcile.js';
import { type ReconcileConfig, reconcileSpec } from './spec.js';

/** The reconciler's dependencies plus the metrics its handler emits. */
export interface ReconcileHandlerDeps extends ReconcileDeps {
  /** @default noMetrics */
  readonly metrics?: Metrics;
  /** An ended execution's admission slot (or entry) is freed. @default no admission */
  readonly admission?: Admission;
  /** Completes a batch whose last generation this was. @default none (no batches) */
  readonly batchCompletion?: BatchCompletionDeps;
}

/** What the reconciler runs over besides the notifier's: the index and the executions. */
export interface ReconcileRuntime extends NotifyRuntime {
  readonly index: GenerationIndex;
  readonly executions: Pick<ExecutionService, 'describe'>;
}

/** Wires the reconciler from configuration and a runtime (AWS or local): it announces as Notify does. */
export function reconcileDeps(config: ReconcileConfig, runtime: ReconcileRuntime): ReconcileHandlerDeps {
  const notify = notifyDeps(config, runtime);
  return {
    index: runtime.index,
    admission: runtime.admission,
    executions: runtime.executions,
    announce: (input) => notifyCompletion(input, notify),
    logger: runtime.logger,
    metrics: runtime.metrics,
    batchCompletion: notify.batchCompletion,
  };
}

/**
 * The handler of Step Functions' execution status-change events (the local runner emits the same
 * events and uses this too). Counts `IndexReconciled` when an ended generation's record had to be
 * corrected: the workflow's own final write was lost.
 */
export function createReconcileHandler(
  deps: ReconcileHandlerDeps,
): (event: unknown) => Promise<ReconcileResult> {
  return async (event) => {
    const parsed = parseEvent(statusChangeEventSchema, event);
    const logger = withKeys(deps.logger, { generationId: parsed.detail.name });
    const result = await reconcileExecution(parsed, { ...deps, logger });
    const ended = parsed.detail.status !== 'RUNNING' && parsed.detail.status !== 'PENDING_REDRIVE';
    if (result.corrected && ended) (deps.metrics ?? noMetrics).add(METRIC.indexReconciled, 'Count', 1);
    // A stopped, timed-out or failed execution holds no slot and waits in no queue any more.
    if (ended) await releaseSlot(deps.admission, parsed.detail.name, { logger });
    // An end Notify never saw (a stop, a timeout) may be its batch's last.
    if (ended && deps.batchCompletion)
      await completeBatchOf(parsed.detail.name, { ...deps.batchCompletion, logger });
    return result;
  };
}

/**
 * Lambda entry: an EventBridge rule on this state machine's status changes invokes it
 * (asynchronously: a failed invocation is retried twice, then left in the dead-letter queue).
 */
export const handler = lambdaEntry(SERVICE.reconcile, ({ logger, metrics }) => {
  const config = reconcileSpec.parse(process.env);
  const dynamo = new DynamoDBClient({});
  return createReconcileHandler(
    reconcileDeps(config, {
      logger,
      metrics,
      s3: new S3Client({}),
      events: createEventBridgePublisher(new EventBridgeClient({}), config.EVENT_BUS_NAME),
      // An announcement EventBridge refuses goes to the announcements dead-letter queue.
      deadLetters: sqsDeadLetters(config),
      index: createDynamoGenerationIndex(dynamo, config.GENERATIONS_TABLE),
      batches: createDynamoBatchIndex(dynamo, config.GENERATIONS_TABLE),
      admission: admissionFromConfig(dynamo, config),
      executions: createSfnExecutionService(new SFNClient({}), config.STATE_MACHINE_ARN),
    }),
  );
});
