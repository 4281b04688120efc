import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { S3Client } from '@aws-sdk/client-s3';
import { SFNClient } from '@aws-sdk/client-sfn';
import { createDynamoBatchIndex } from '../shared/aws/dynamodb-batches.js';
import { createDynamoGenerationIndex } from '../shared/aws/dynamodb-index.js';
import { createEventBridgePublisher } from '../shared/aws/eventbridge-publisher.js';
import { createS3ObjectStore } from '../shared/aws/s3-object-store.js';
import { createSfnExecutionService } from '../shared/aws/sfn-execution-service.js';
import { systemClock } from '../shared/clock.js';
import { SCHEDULED_DETAIL_TYPE } from '../shared/events.js';
import { lambdaEntry } from '../shared/lambda-entry.js';
import { METRIC, type Metrics, noMetrics, SERVICE } from '../shared/metrics.js';
import { parseEvent } from '../shared/parse-event.js';
import {
  type RequestEventResult,
  requestedEventSchema,
  scheduledInputSchema,
  triggerFromRequestedEvent,
  triggerFromSchedule,
} from './request-event.js';
import { type TriggerConfig, triggerSpec } from './spec.js';
import {
  objectCreatedEventSchema,
  type TriggerDeps,
  type TriggerReport,
  triggerFromObject,
} from './trigger.js';

/** The trigger's dependencies plus the metrics its handler emits. */
export interface TriggerHandlerDeps extends TriggerDeps {
  /** @default noMetrics */
  readonly metrics?: Metrics;
}

/** Wires the trigger from configuration and its collaborators (AWS or local). */
export function triggerDeps(
  config: TriggerConfig,
  ports: Omit<TriggerHandlerDeps, 'defaultModel'>,
): TriggerHandlerDeps {
  return { ...ports, defaultModel: config.DEFAULT_MODEL };
}

/**
 * The trigger's handler over explicit dependencies (local `generate --from` uses it too). Counts
 * the lines that started an execution (`RequestsStarted`) and those rejected (`RequestsRejected`).
 */
export function createTriggerHandler(deps: TriggerHandlerDeps): (event: unknown) => Promise<TriggerReport> {
  return async (event) => {
    const report = await triggerFromObject(parseEvent(objectCreatedEventSchema, event), deps);
    const metrics = deps.metrics ?? noMetrics;
    const count = (status: string) => report.results.filter((result) => result.status === status).length;
    metrics.add(METRIC.requestsStarted, 'Count', count('started'));
    metrics.add(METRIC.requestsRejected, 'Count', count('rejected'));
    return report;
  };
}

/**
 * The handler of requests that arrive one at a time: "Generation Requested" events and schedules.
 * Counts a started one in `RequestsStarted`, a rejected one in `RequestsRejected`.
 */
export function createRequestEventHandler(
  deps: TriggerHandlerDeps,
): (event: unknown) => Promise<RequestEventResult> {
  return async (event) => {
    const kind = (event as { 'detail-type'?: unknown } | null)?.['detail-type'];
    const result =
      kind === SCHEDULED_DETAIL_TYPE
        ? await triggerFromSchedule(parseEvent(scheduledInputSchema, event), deps)
        : await triggerFromRequestedEvent(parseEvent(requestedEventSchema, event), deps);
    const metrics = deps.metrics ?? noMetrics;
    metrics.add(METRIC.requestsStarted, 'Count', result.status === 'started' ? 1 : 0);
    metrics.add(METRIC.requestsRejected, 'Count', result.status === 'rejected' ? 1 : 0);
    return result;
  };
}

/**
 * Lambda entry for every way in without the API: S3 "Object Created" events under requests/,
 * "Generation Requested" events and schedules (all through EventBridge), told apart by `detail-type`.
 */
export const handler = lambdaEntry(SERVICE.trigger, ({ logger, metrics }) => {
  const config = triggerSpec.parse(process.env);
  const dynamo = new DynamoDBClient({});
  const deps = triggerDeps(config, {
    objects: createS3ObjectStore(new S3Client({})),
    executions: createSfnExecutionService(new SFNClient({}), config.STATE_MACHINE_ARN),
    index: createDynamoGenerationIndex(dynamo, config.GENERATIONS_TABLE),
    batches: createDynamoBatchIndex(dynamo, config.GENERATIONS_TABLE),
    clock: systemClock,
    events: createEventBridgePublisher(new EventBridgeClient({}), config.EVENT_BUS_NAME),
    logger,
    metrics,
  });
  const files = createTriggerHandler(deps);
  const requests = createRequestEventHandler(deps);
  return (event: unknown): Promise<TriggerReport | RequestEventResult> =>
    (event as { 'detail-type'?: unknown } | null)?.['detail-type'] === 'Object Created'
      ? files(event)
      : requests(event);
});
