import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { SFNClient } from '@aws-sdk/client-sfn';
import type { Context } from 'aws-lambda';
import type { Hono } from 'hono';
import { handle } from 'hono/aws-lambda';
import * as z from 'zod';
import type { AdmissionQueue } from '../shared/admission.js';
import { createDynamoAdmissionQueue } from '../shared/aws/dynamodb-admission.js';
import { createDynamoBatchIndex } from '../shared/aws/dynamodb-batches.js';
import { createDynamoGenerationIndex } from '../shared/aws/dynamodb-index.js';
import { createS3ObjectStore } from '../shared/aws/s3-object-store.js';
import { createS3Presigner } from '../shared/aws/s3-presigner.js';
import { createSfnExecutionService } from '../shared/aws/sfn-execution-service.js';
import type { Clock } from '../shared/clock.js';
import { systemClock } from '../shared/clock.js';
import type { ConsoleOidcEnv } from '../shared/config.js';
import { dashscopeAccounts } from '../shared/dashscope-from-env.js';
import { lambdaEntry } from '../shared/lambda-entry.js';
import type { Logger } from '../shared/logger.js';
import { countThrottles, type Metrics, noMetrics, SERVICE } from '../shared/metrics.js';
import type { Presigner } from '../shared/presigned-url.js';
import { secretProvider } from '../shared/secret.js';
import { createApiApp } from './app.js';
import { createOidcRelyingParty } from './console/oidc.js';
import type { OidcConsoleSignIn } from './console/oidc-routes.js';
import type { GenerationsDeps } from './generations.js';
import { type ApiConfig, apiSpec } from './spec.js';

/** The identity API Gateway verified: an IAM principal (SigV4) or a JWT's subject. */
const authorizerSchema = z
  .object({
    event: z.object({
      requestContext: z.object({
        authorizer: z
          .object({
            iam: z.object({ userArn: z.string().optional() }).optional(),
            jwt: z.object({ claims: z.object({ sub: z.string().optional() }).optional() }).optional(),
          })
          .optional(),
      }),
    }),
  })
  .catch({ event: { requestContext: {} } });

const authorizerOf = (c: { env: unknown }) => authorizerSchema.parse(c.env).event.requestContext.authorizer;

/** The console's OIDC sign-in, its secrets read from Secrets Manager on first use (never logged). */
function consoleSignInOf(env: ConsoleOidcEnv): OidcConsoleSignIn {
  const sessionKey = secretProvider('console session key', env.sessionKeySecretId, undefined);
  if (!sessionKey) throw new Error('CONSOLE_OIDC.sessionKeySecretId is required');
  return {
    relyingParty: createOidcRelyingParty({
      issuer: env.issuer,
      clientId: env.clientId,
      scopes: env.scopes,
      clientSecret: secretProvider('OIDC client secret', env.clientSecretId, undefined),
    }),
    sessionKey,
    sessionSeconds: env.sessionSeconds,
  };
}

/** What the API runs over besides its configuration: the executions, the index, the queue, S3. */
export interface ApiPorts {
  readonly executions: GenerationsDeps['executions'];
  readonly index: GenerationsDeps['index'];
  /** The batches beside the index, and S3 objects: where a batch's requests are written. */
  readonly batches?: GenerationsDeps['batches'];
  readonly objects?: GenerationsDeps['objects'];
  /** The admission queue in the index's table (shown when the configuration has `ADMISSION`). */
  readonly queue: AdmissionQueue;
  /** Presigns reads of `bucket`, each link good for `expirySeconds`. */
  readonly presigner: (bucket: string, expirySeconds: number) => Presigner;
  readonly clock: Clock;
  readonly logger: Logger;
  /** @default noMetrics */
  readonly metrics?: Metrics;
  /** @default globalThis.fetch */
  readonly fetch?: typeof fetch;
}

/** Wires the API from configuration and its collaborators (AWS or local). */
export function apiDeps(config: ApiConfig, ports: ApiPorts): GenerationsDeps {
  return {
    executions: ports.executions,
    index: ports.index,
    admission: config.ADMISSION ? { queue: ports.queue, settings: config.ADMISSION } : undefined,
    presign: ports.presigner(config.BUCKET_NAME, config.URL_EXPIRY_SECONDS),
    dashscopeAccounts: dashscopeAccounts(config, countThrottles(ports.fetch, ports.metrics ?? noMetrics), {
      now: () => ports.clock.now(),
    }),
    clock: ports.clock,
    logger: ports.logger,
    defaultModel: config.DEFAULT_MODEL,
    runTimeModel: config.RUN_TIME_MODEL,
    batches: ports.batches,
    objects: ports.objects,
    bucket: config.BUCKET_NAME,
  };
}

/** Builds the API over Step Functions, the generations index and S3 from the Lambda's environment. */
function createLambdaApp(logger: Logger, metrics: Metrics): Hono {
  const config = apiSpec.parse(process.env);
  const s3 = new S3Client({});
  const dynamo = new DynamoDBClient({});
  return createApiApp(
    apiDeps(config, {
      executions: createSfnExecutionService(new SFNClient({}), config.STATE_MACHINE_ARN),
      index: createDynamoGenerationIndex(dynamo, config.GENERATIONS_TABLE),
      batches: createDynamoBatchIndex(dynamo, config.GENERATIONS_TABLE),
      objects: createS3ObjectStore(s3),
      queue: createDynamoAdmissionQueue(dynamo, config.GENERATIONS_TABLE),
      presigner: (bucket, expirySeconds) => createS3Presigner({ s3, bucket, expirySeconds }),
      clock: systemClock,
      logger,
      metrics,
    }),
    {
      callerOf: (c) => {
        const authorizer = authorizerOf(c);
        return authorizer?.iam?.userArn ?? authorizer?.jwt?.claims?.sub;
      },
      // The console's routes pass the gateway without its authorizer (a browser cannot send the
      // bearer header on a page load) and sign browsers in themselves; every other route must
      // have been verified by the gateway.
      ...(config.CONSOLE_OIDC
        ? {
            console: true,
            oidc: consoleSignInOf(config.CONSOLE_OIDC),
            verifiedByGateway: (c) => {
              const authorizer = authorizerOf(c);
              return Boolean(authorizer?.jwt ?? authorizer?.iam);
            },
          }
        : {}),
    },
  );
}

type LambdaHandler = ReturnType<typeof handle>;

/**
 * Lambda entry behind API Gateway (HTTP API, payload 2.0); API Gateway authenticates first, but
 * for the console's routes in `jwt` mode, which the app authenticates.
 */
export const handler = lambdaEntry(SERVICE.api, ({ logger, metrics }) => {
  const app: LambdaHandler = handle(createLambdaApp(logger, metrics));
  return (event: Parameters<LambdaHandler>[0], context?: Context) =>
    app(event, context as Parameters<LambdaHandler>[1]) as ReturnType<LambdaHandler>;
});
