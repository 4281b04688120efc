import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { SFNClient } from '@aws-sdk/client-sfn';
import type { Context } from 'aws-lambda';
import type { Hono } from 'hono';
import { handle } from 'hono/aws-lambda';
import * as z from 'zod';
import { createDynamoAdmissionQueue } from '../shared/aws/dynamodb-admission.js';
import { createDynamoGenerationIndex } from '../shared/aws/dynamodb-index.js';
import { createS3Presigner } from '../shared/aws/s3-presigner.js';
import { createSfnExecutionService } from '../shared/aws/sfn-execution-service.js';
import { systemClock } from '../shared/clock.js';
import { type ConsoleOidcEnv, loadConfig } from '../shared/config.js';
import { dashscopeAccounts } from '../shared/dashscope-from-env.js';
import { lambdaEntry } from '../shared/lambda-entry.js';
import type { Logger } from '../shared/logger.js';
import { countThrottles, type Metrics, SERVICE } from '../shared/metrics.js';
import { secretProvider } from '../shared/secret.js';
import { createApiApp } from './app.js';
import { createOidcRelyingParty } from './console/oidc.js';
import type { OidcConsoleSignIn } from './console/oidc-routes.js';

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

/** Builds the API over Step Functions, the generations index and S3 from the Lambda's environment. */
function createLambdaApp(logger: Logger, metrics: Metrics): Hono {
  const config = loadConfig('api', process.env);
  const s3 = new S3Client({});
  const dynamo = new DynamoDBClient({});
  return createApiApp(
    {
      executions: createSfnExecutionService(new SFNClient({}), config.STATE_MACHINE_ARN),
      index: createDynamoGenerationIndex(dynamo, config.GENERATIONS_TABLE),
      admission: config.ADMISSION
        ? {
            queue: createDynamoAdmissionQueue(dynamo, config.GENERATIONS_TABLE),
            settings: config.ADMISSION,
          }
        : undefined,
      presign: createS3Presigner({
        s3,
        bucket: config.BUCKET_NAME,
        expirySeconds: config.URL_EXPIRY_SECONDS,
      }),
      dashscopeAccounts: dashscopeAccounts(config, countThrottles(undefined, metrics)),
      clock: systemClock,
      logger,
      defaultModel: config.DEFAULT_MODEL,
    },
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
