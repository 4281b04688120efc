import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SFNClient } from '@aws-sdk/client-sfn';
import { createDynamoAdmissionQueue } from '../shared/aws/dynamodb-admission.js';
import { createDynamoGenerationIndex } from '../shared/aws/dynamodb-index.js';
import { createSfnResumer } from '../shared/aws/sfn-resumer.js';
import { realSleep, systemClock } from '../shared/clock.js';
import { loadConfig } from '../shared/config.js';
import { lambdaEntry } from '../shared/lambda-entry.js';
import { SERVICE } from '../shared/metrics.js';
import { type DispatchDeps, type DispatchReport, dispatch } from './dispatch.js';

/**
 * The dispatcher's handler: every invocation (a kick from Admit, Poll, Notify or the reconciler,
 * or the one-minute sweep) is one {@link dispatch} run; the event itself carries nothing.
 */
export function createDispatchHandler(deps: DispatchDeps): (event: unknown) => Promise<DispatchReport> {
  return async () => dispatch(deps);
}

/** Lambda entry: dependencies are built from the environment on the first call, once per container. */
export const handler = lambdaEntry(SERVICE.dispatch, ({ logger }) => {
  const config = loadConfig('dispatch', process.env);
  const dynamo = new DynamoDBClient({});
  return createDispatchHandler({
    queue: createDynamoAdmissionQueue(dynamo, config.GENERATIONS_TABLE),
    index: createDynamoGenerationIndex(dynamo, config.GENERATIONS_TABLE),
    resumer: createSfnResumer(new SFNClient({})),
    settings: config.ADMISSION,
    clock: systemClock,
    sleep: realSleep,
    logger,
  });
});
