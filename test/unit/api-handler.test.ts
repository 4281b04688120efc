import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

/**
 * The API's Lambda entry with the console's OIDC sign-in configured (`jwt` mode): the wiring
 * from `CONSOLE_OIDC` to the app. Only answers that need no AWS call are asked for.
 */
let handler: (
  event: APIGatewayProxyEventV2,
) => Promise<{ statusCode?: number; headers?: Record<string, string> }>;

beforeAll(async () => {
  vi.stubEnv('STATE_MACHINE_ARN', 'arn:aws:states:eu-west-1:123456789012:stateMachine:Generation');
  vi.stubEnv('GENERATIONS_TABLE', 'generations');
  vi.stubEnv('BUCKET_NAME', 'images-bucket');
  vi.stubEnv('DASHSCOPE_API_KEY_SECRET_ID', 'sd35/dashscope-api-key');
  vi.stubEnv('AWS_REGION', 'eu-west-1');
  vi.stubEnv('POWERTOOLS_METRICS_DISABLED', 'true');
  vi.stubEnv(
    'CONSOLE_OIDC',
    JSON.stringify({
      issuer: 'https://issuer.example.com',
      clientId: 'console-client',
      sessionKeySecretId: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:key',
    }),
  );
  ({ handler } = (await import('../../functions/api/handler.js')) as unknown as { handler: typeof handler });
});

afterAll(() => {
  vi.unstubAllEnvs();
});

/** An HTTP API (payload 2.0) event on a route without an authorizer (no `requestContext.authorizer`). */
function event(path: string) {
  return {
    version: '2.0',
    routeKey: path.startsWith('/console') ? 'GET /console/{proxy+}' : 'ANY /{proxy+}',
    rawPath: path,
    rawQueryString: '',
    headers: { host: 'api.example.com' },
    isBase64Encoded: false,
    requestContext: {
      accountId: '123456789012',
      apiId: 'api',
      domainName: 'api.example.com',
      domainPrefix: 'api',
      http: { method: 'GET', path, protocol: 'HTTP/1.1', sourceIp: '203.0.113.1', userAgent: 'test' },
      requestId: 'r1',
      routeKey: 'ANY /{proxy+}',
      stage: '$default',
      time: '01/Mar/2026:12:00:00 +0000',
      timeEpoch: 0,
    },
  } as unknown as APIGatewayProxyEventV2;
}

describe('the API Lambda with the console sign-in configured', () => {
  it('serves the console, sending a browser without a session to sign in', async () => {
    const answer = await handler(event('/console/'));
    expect(answer.statusCode).toBe(303);
    expect(answer.headers?.location).toBe('/console/sign-in?next=%2Fconsole%2F');
  });

  it('refuses an API route that reached it without a caller verified by API Gateway', async () => {
    const answer = await handler(event('/v1/generations'));
    expect(answer.statusCode).toBe(401);
  });

  it('refuses a console-looking path that normalizes to an API route', async () => {
    const answer = await handler(event('/console/%2e%2e/v1/generations'));
    expect(answer.statusCode).toBe(401);
  });
});
