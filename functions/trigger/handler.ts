import { S3Client } from '@aws-sdk/client-s3';
import { SFNClient } from '@aws-sdk/client-sfn';
import { createSfnExecutionService } from '../api/sfn-execution-service.js';
import { createEventBridgePublisher, EventBridgeClient } from '../notify/events.js';
import { loadConfig } from '../shared/config.js';
import { createLambdaLogger } from '../shared/logger.js';
import { parseEvent } from '../shared/parse-event.js';
import {
  objectCreatedEventSchema,
  type TriggerDeps,
  type TriggerReport,
  triggerFromObject,
} from './trigger.js';

/** The trigger's handler over explicit dependencies (local `generate --from` uses it too). */
export function createTriggerHandler(deps: TriggerDeps): (event: unknown) => Promise<TriggerReport> {
  return (event) => triggerFromObject(parseEvent(objectCreatedEventSchema, event), deps);
}

let lambdaHandler: ((event: unknown) => Promise<TriggerReport>) | undefined;

/** Lambda entry for S3 "Object Created" events under requests/ (via EventBridge). */
export const handler = (event: unknown): Promise<TriggerReport> => {
  lambdaHandler ??= (() => {
    const config = loadConfig('trigger', process.env);
    return createTriggerHandler({
      s3: new S3Client({}),
      executions: createSfnExecutionService(new SFNClient({}), config.STATE_MACHINE_ARN),
      events: createEventBridgePublisher(new EventBridgeClient({}), config.EVENT_BUS_NAME),
      logger: createLambdaLogger('trigger'),
    });
  })();
  return lambdaHandler(event);
};
