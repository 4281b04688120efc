import { S3Client } from '@aws-sdk/client-s3';
import { SFNClient } from '@aws-sdk/client-sfn';
import type { Context } from 'aws-lambda';
import type { Hono } from 'hono';
import { handle } from 'hono/aws-lambda';
import { systemClock } from '../shared/clock.js';
import { loadConfig } from '../shared/config.js';
import { dashscopeFromConfig } from '../shared/dashscope-from-env.js';
import { lambdaEntry } from '../shared/lambda-entry.js';
import type { Logger } from '../shared/logger.js';
import { countThrottles, type Metrics, SERVICE } from '../shared/metrics.js';
import { createApiApp } from './app.js';
import { createS3Presigner } from './presign.js';
import { createSfnExecutionService } from './sfn-execution-service.js';

/** Builds the API over Step Functions and S3 from the Lambda's environment. */
function createLambdaApp(logger: Logger, metrics: Metrics): Hono {
  const config = loadConfig('api', process.env);
  const s3 = new S3Client({});
  return createApiApp({
    executions: createSfnExecutionService(new SFNClient({}), config.STATE_MACHINE_ARN),
    presign: createS3Presigner({ s3, bucket: config.BUCKET_NAME, expirySeconds: config.URL_EXPIRY_SECONDS }),
    dashscope: dashscopeFromConfig(config, countThrottles(undefined, metrics)),
    clock: systemClock,
    logger,
    defaultModel: config.DEFAULT_MODEL,
  });
}

type LambdaHandler = ReturnType<typeof handle>;

/** Lambda entry behind API Gateway (HTTP API, payload 2.0); API Gateway authenticates first. */
export const handler = lambdaEntry(SERVICE.api, ({ logger, metrics }) => {
  const app: LambdaHandler = handle(createLambdaApp(logger, metrics));
  return (event: Parameters<LambdaHandler>[0], context?: Context) =>
    app(event, context as Parameters<LambdaHandler>[1]) as ReturnType<LambdaHandler>;
});
