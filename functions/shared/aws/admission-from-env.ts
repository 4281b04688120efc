import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { LambdaClient } from '@aws-sdk/client-lambda';
import type { Admission } from '../admission.js';
import { createDynamoAdmissionQueue } from './dynamodb-admission.js';
import { createLambdaKick } from './lambda-kick.js';

/**
 * The admission queue in the generations table and the dispatcher's doorbell, for a function the
 * stack gave both (`GENERATIONS_TABLE`, `DISPATCHER_FUNCTION`); undefined otherwise.
 */
export function admissionFromConfig(
  dynamo: DynamoDBClient,
  config: { readonly GENERATIONS_TABLE?: string; readonly DISPATCHER_FUNCTION?: string },
): Admission | undefined {
  if (!config.GENERATIONS_TABLE || !config.DISPATCHER_FUNCTION) return undefined;
  return {
    queue: createDynamoAdmissionQueue(dynamo, config.GENERATIONS_TABLE),
    kick: createLambdaKick(new LambdaClient({}), config.DISPATCHER_FUNCTION),
  };
}
