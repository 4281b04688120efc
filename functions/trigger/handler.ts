import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { S3Client } from '@aws-sdk/client-s3';
import { SFNClient } from '@aws-sdk/client-sfn';
import { createDynamoGenerationIndex } from '../shared/aws/dynamodb-index.js';
import { createEventBridgePublisher } from '../shared/aws/eventbridge-publisher.js';
import { createS3ObjectStore } from '../shared/aws/s3-object-store.js';
import { createSfnExecutionService } from '../shared/aws/sfn-execution-service.js';
import { systemClock } from '../shared/clock.js';
import { loadConfig } from '../shared/config.js';
import { lambdaEntry } from '../shared/lambda-entry.js';
import { METRIC, type Metrics, noMetrics, SERVICE } from '../shared/metrics.js';
import { parseEvent } from '../shared/parse-event.js';
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

/** Lambda entry for S3 "Object Created" events under requests/ (via EventBridge). */
export const handler = lambdaEntry(SERVICE.trigger, ({ logger, metrics }) => {
  const config = loadConfig('trigger', process.env);
  return createTriggerHandler({
    objects: createS3ObjectStore(new S3Client({})),
    executions: createSfnExecutionService(new SFNClient({}), config.STATE_MACHINE_ARN),
    index: createDynamoGenerationIndex(new DynamoDBClient({}), config.GENERATIONS_TABLE),
    clock: systemClock,
    events: createEventBridgePublisher(new EventBridgeClient({}), config.EVENT_BUS_NAME),
    logger,
    metrics,
    defaultModel: config.DEFAULT_MODEL,
  });
});
