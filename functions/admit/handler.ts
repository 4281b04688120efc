import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { LambdaClient } from '@aws-sdk/client-lambda';
import type { Admission } from '../shared/admission.js';
import { createDynamoAdmissionQueue } from '../shared/aws/dynamodb-admission.js';
import { createLambdaKick } from '../shared/aws/lambda-kick.js';
import { systemClock } from '../shared/clock.js';
import { lambdaEntry } from '../shared/lambda-entry.js';
import { correlationOf, withKeys } from '../shared/logger.js';
import { SERVICE } from '../shared/metrics.js';
import { parseEvent } from '../shared/parse-event.js';
import type { Runtime } from '../shared/runtime.js';
import { admitInputSchema } from '../shared/workflow-state.js';
import { type AdmitDeps, admitGeneration } from './admit.js';
import { type AdmitConfig, admitSpec } from './spec.js';

/** Wires Admit from configuration and a runtime (AWS or local); it needs the admission queue. */
export function admitDeps(
  config: AdmitConfig,
  runtime: Runtime & { readonly admission: Admission },
): AdmitDeps {
  return {
    admission: runtime.admission,
    clock: runtime.clock,
    logger: runtime.logger,
    runTimeModel: config.RUN_TIME_MODEL,
  };
}

/**
 * The Admit state's handler over explicit dependencies (the local runner uses this too). The
 * request is validated here, before it waits: a bad one fails at once, not after its wait.
 */
export function createAdmitHandler(deps: AdmitDeps): (event: unknown) => Promise<Record<string, never>> {
  return async (event) => {
    const logger = withKeys(deps.logger, correlationOf(event));
    await admitGeneration(parseEvent(admitInputSchema, event), { ...deps, logger });
    return {};
  };
}

/** Lambda entry: dependencies are built from the environment on the first call, once per container. */
export const handler = lambdaEntry(SERVICE.admit, ({ logger }) => {
  const config = admitSpec.parse(process.env);
  const admission: Admission = {
    queue: createDynamoAdmissionQueue(new DynamoDBClient({}), config.GENERATIONS_TABLE),
    kick: createLambdaKick(new LambdaClient({}), config.DISPATCHER_FUNCTION),
  };
  return createAdmitHandler(admitDeps(config, { clock: systemClock, logger, admission }));
});
