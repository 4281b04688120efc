import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import type { Admission } from '../shared/admission.js';
import { admissionFromConfig } from '../shared/aws/admission-from-env.js';
import { createDynamoBatchIndex } from '../shared/aws/dynamodb-batches.js';
import { createDynamoGenerationIndex } from '../shared/aws/dynamodb-index.js';
import { createEventBridgePublisher } from '../shared/aws/eventbridge-publisher.js';
import { createS3ObjectStore } from '../shared/aws/s3-object-store.js';
import { createSqsDeadLetters } from '../shared/aws/sqs-dead-letters.js';
import type { BatchIndex } from '../shared/batch.js';
import { type Clock, systemClock } from '../shared/clock.js';
import {
  type AnnouncementDeadLetters,
  EventNotPublishedError,
  type EventPublisher,
} from '../shared/events.js';
import { failureView } from '../shared/failure.js';
import type { GenerationIndex } from '../shared/generation-index.js';
import { finalUpdateOfState, startedAtSchema, writeIndexSafely } from '../shared/index-updates.js';
import { lambdaEntry } from '../shared/lambda-entry.js';
import { correlationOf, type Logger, withKeys } from '../shared/logger.js';
import { METRIC, type Metrics, noMetrics, OUTCOME_DIMENSION, SERVICE } from '../shared/metrics.js';
import { parseEvent } from '../shared/parse-event.js';
import { secretProvider } from '../shared/secret.js';
import { releaseSlot } from '../shared/slot-life.js';
import { persistResultSchema, taskStateSchema } from '../shared/workflow-state.js';
import { type BatchCompletionDeps, completeBatchOf } from './batch-completion.js';
import {
  type NotifyDeps,
  type NotifyInput,
  type NotifyResult,
  notifyCompletion,
  notifyInputSchema,
} from './notify.js';
import { type NotifyConfig, notifySpec } from './spec.js';
import type { WebhookPolicy } from './webhook.js';

export interface NotifyRuntime {
  readonly logger: Logger;
  readonly s3: S3Client;
  readonly events: EventPublisher;
  /** Deployed: https to public addresses only (the default). */
  readonly webhookPolicy?: WebhookPolicy;
  readonly webhookTiming?: NotifyDeps['webhookTiming'];
  /** @default noMetrics */
  readonly metrics?: Metrics;
  /** Measures request → images. @default systemClock */
  readonly clock?: Clock;
  /** Where the generation's end is recorded. @default not recorded */
  readonly index?: GenerationIndex;
  /** The generation's admission slot is freed at its end. @default no admission */
  readonly admission?: Admission;
  /** The batches: a batch whose last generation ended is completed. @default none (no batches) */
  readonly batches?: BatchIndex;
  /**
   * Where the last attempt puts an event EventBridge would not take (the SQS queue on AWS).
   * @default the error log (locally: the local event sink never refuses an event)
   */
  readonly deadLetters?: AnnouncementDeadLetters;
}

/** The notifier's dependencies plus what its handler measures with. */
export interface NotifyHandlerDeps extends NotifyDeps {
  /** @default noMetrics */
  readonly metrics?: Metrics;
  /** @default systemClock */
  readonly clock?: Clock;
  /** Where the generation's end is recorded, before anyone is told. @default not recorded */
  readonly index?: GenerationIndex;
  /** The generation's admission slot (or entry) is freed at its end. @default no admission */
  readonly admission?: Admission;
  /** Completes a batch whose last generation this was. @default none (no batches) */
  readonly batchCompletion?: BatchCompletionDeps;
}

/** Wires the notifier from configuration and a runtime (AWS or local). */
export function notifyDeps(config: NotifyConfig, runtime: NotifyRuntime): NotifyHandlerDeps {
  const objects = createS3ObjectStore(runtime.s3);
  const webhookSecret = secretProvider(
    'webhook signing secret',
    config.WEBHOOK_SECRET_ID,
    config.WEBHOOK_SECRET,
  );
  const webhookPolicy = runtime.webhookPolicy ?? {};
  return {
    events: runtime.events,
    objects,
    bucket: config.BUCKET_NAME,
    logger: runtime.logger,
    webhookSecret,
    webhookPolicy,
    webhookTiming: runtime.webhookTiming,
    deadLetters: runtime.deadLetters,
    eventBusName: config.EVENT_BUS_NAME,
    metrics: runtime.metrics,
    clock: runtime.clock,
    index: runtime.index,
    admission: runtime.admission,
    batchCompletion:
      runtime.batches && runtime.index
        ? {
            batches: runtime.batches,
            index: runtime.index,
            objects,
            bucket: config.BUCKET_NAME,
            events: runtime.events,
            logger: runtime.logger,
            clock: runtime.clock ?? systemClock,
            webhookSecret,
            webhookPolicy,
            webhookTiming: runtime.webhookTiming,
          }
        : undefined,
  };
}

/**
 * The Notify states' handler over explicit dependencies (the local runner uses this too). Every
 * generation ends here, so this is where its outcome is counted (`Outcomes` by `outcome`) and,
 * on success, the seconds from request to images stored (`SecondsToImages`): once, by the run
 * that ends it (not by one that fails with {@link EventNotPublishedError}, which the workflow
 * runs again).
 */
export function createNotifyHandler(deps: NotifyHandlerDeps): (event: unknown) => Promise<NotifyResult> {
  return async (event) => {
    const input = parseEvent(notifyInputSchema, event);
    const logger = withKeys(deps.logger, correlationOf(event));
    const metrics = deps.metrics ?? noMetrics;
    const clock = deps.clock ?? systemClock;
    const { startedAt } = startedAtSchema.parse(event);
    // The index first: whoever is told (event, webhook) and reads the API sees the end.
    if (deps.index) {
      const now = new Date(clock.now()).toISOString();
      const update = finalUpdateOfState(input.outcome, input.state, startedAt ?? now, now);
      await writeIndexSafely(deps.index, update, logger, () =>
        metrics.add(METRIC.indexWriteFailures, 'Count', 1),
      );
    }
    // Whatever ended the generation, it holds no slot any more (a failed Submit never polled).
    await releaseSlot(deps.admission, input.state.id, { logger });
    const outcome = outcomeOf(input);
    const count = () => {
      metrics.add(METRIC.outcomes, 'Count', 1, { [OUTCOME_DIMENSION]: outcome });
      if (startedAt && input.outcome === 'succeeded') {
        const seconds = (clock.now() - Date.parse(startedAt)) / 1000;
        if (seconds >= 0) metrics.add(METRIC.secondsToImages, 'Seconds', seconds);
      }
    };
    let result: NotifyResult;
    try {
      result = await notifyCompletion(input, { ...deps, logger });
    } catch (error) {
      if (!(error instanceof EventNotPublishedError)) count();
      throw error;
    }
    count();
    logger.info('Generation finished', { outcome, event: result.event });
    // Announced: if it was its batch's last, the batch ends (after its last generation's event).
    if (deps.batchCompletion) await completeBatchOf(input.state.id, { ...deps.batchCompletion, logger });
    return result;
  };
}

/** `succeeded`, `partial` (some images failed), or the failure's stable error type. */
export function outcomeOf(input: NotifyInput): string {
  const { state } = input;
  if (input.outcome === 'succeeded') {
    const result = persistResultSchema.safeParse(state.result);
    return result.success && result.data.status === 'partial' ? 'partial' : 'succeeded';
  }
  const task = taskStateSchema.safeParse(state.task);
  return failureView(
    state.failure?.Error ?? 'Error',
    state.failure?.Cause,
    task.success ? task.data : undefined,
  ).type;
}

/** Lambda entry: dependencies are built from the environment on the first call, once per container. */
export const handler = lambdaEntry(SERVICE.notify, ({ logger, metrics }) => {
  const config = notifySpec.parse(process.env);
  const dynamo = new DynamoDBClient({});
  return createNotifyHandler(
    notifyDeps(config, {
      logger,
      metrics,
      s3: new S3Client({}),
      events: createEventBridgePublisher(new EventBridgeClient({}), config.EVENT_BUS_NAME),
      index: config.GENERATIONS_TABLE
        ? createDynamoGenerationIndex(dynamo, config.GENERATIONS_TABLE)
        : undefined,
      batches: config.GENERATIONS_TABLE
        ? createDynamoBatchIndex(dynamo, config.GENERATIONS_TABLE)
        : undefined,
      admission: admissionFromConfig(dynamo, config),
      deadLetters: sqsDeadLetters(config),
    }),
  );
});

/** The SQS dead-letter queue the stack names in `DEAD_LETTER_QUEUE_URL`; none: the error log. */
export function sqsDeadLetters(
  config: Pick<NotifyConfig, 'DEAD_LETTER_QUEUE_URL'>,
): AnnouncementDeadLetters | undefined {
  const url = config.DEAD_LETTER_QUEUE_URL;
  return url ? createSqsDeadLetters(new SQSClient({}), url) : undefined;
}
