import { Match, Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { consoleOidcEnvSchema } from '../../functions/shared/config.js';
import { createApp } from '../../infra/app.js';
import { admissionDeployment } from '../support/configurations.js';
import { FUNCTION_PREFIXES, statementsOf, synthesize } from './template.js';

type Json = Record<string, any>;

function synth(generation: Record<string, unknown> = {}): Template {
  const { stack } = createApp({ context: { 'aws:cdk:bundling-stacks': [], generation } });
  return Template.fromStack(stack);
}

function apiStatements(template: Template): Json[] {
  const fn = Object.entries(template.findResources('AWS::Lambda::Function')).find(([id]) =>
    id.startsWith('ApiHandler'),
  );
  if (!fn) throw new Error('no API function');
  const roleId = fn[1].Properties.Role['Fn::GetAtt'][0];
  return Object.values(template.findResources('AWS::IAM::Policy'))
    .filter((policy) => policy.Properties.Roles.some((role: Json) => role.Ref === roleId))
    .flatMap((policy) => policy.Properties.PolicyDocument.Statement);
}

const actionsOf = (statement: Json): string[] => [statement.Action].flat();

describe('HTTP API', () => {
  const template = synth();

  it('is an API Gateway HTTP API in front of one Lambda', () => {
    template.resourceCountIs('AWS::ApiGatewayV2::Api', 1);
    template.hasResourceProperties('AWS::ApiGatewayV2::Api', { ProtocolType: 'HTTP' });
    template.hasResourceProperties('AWS::ApiGatewayV2::Integration', { IntegrationType: 'AWS_PROXY' });
  });

  it('requires IAM (SigV4) on every route by default, leaving only GET /healthz open', () => {
    const routes = Object.values(template.findResources('AWS::ApiGatewayV2::Route')).map((r) => r.Properties);
    expect(routes.map((r) => r.RouteKey).sort()).toEqual(['ANY /{proxy+}', 'GET /healthz']);
    for (const route of routes) {
      expect(route.AuthorizationType).toBe(route.RouteKey === 'GET /healthz' ? 'NONE' : 'AWS_IAM');
    }
  });

  it('uses a JWT authorizer when configured', () => {
    const jwt = synth({ apiAuth: { mode: 'jwt', issuer: 'https://issuer.example.com', audience: ['sd35'] } });
    jwt.hasResourceProperties('AWS::ApiGatewayV2::Authorizer', {
      AuthorizerType: 'JWT',
      JwtConfiguration: { Issuer: 'https://issuer.example.com', Audience: ['sd35'] },
    });
    jwt.hasResourceProperties('AWS::ApiGatewayV2::Route', {
      RouteKey: 'ANY /{proxy+}',
      AuthorizationType: 'JWT',
    });
  });

  it('fails synth for a JWT setting without an https issuer, naming the field', () => {
    expect(() =>
      synth({ apiAuth: { mode: 'jwt', issuer: 'http://issuer.example.com', audience: ['x'] } }),
    ).toThrow(/generation\.apiAuth\.issuer/);
  });

  describe('the console in jwt mode', () => {
    const auth = { mode: 'jwt', issuer: 'https://issuer.example.com', audience: ['sd35'] };
    const withConsole = synth({
      apiAuth: { ...auth, console: { clientId: 'console-client', clientSecretName: 'sd35/console-client' } },
    });
    const routes = () =>
      Object.values(withConsole.findResources('AWS::ApiGatewayV2::Route')).map((r) => r.Properties);

    it('opens only the console routes at the gateway; every other route keeps the JWT authorizer', () => {
      const byKey = Object.fromEntries(routes().map((r) => [r.RouteKey, r.AuthorizationType]));
      expect(byKey).toEqual({
        'ANY /{proxy+}': 'JWT',
        'GET /healthz': 'NONE',
        'GET /console': 'NONE',
        'POST /console': 'NONE',
        'GET /console/{proxy+}': 'NONE',
        'POST /console/{proxy+}': 'NONE',
      });
    });

    it('gives the API function sign-in settings its config schema reads, with secrets by id only', () => {
      // Prepare: the variable as deployed, the session key's ARN (a Ref) written out.
      const [, fn] = Object.entries(withConsole.findResources('AWS::Lambda::Function')).find(([id]) =>
        id.startsWith('ApiHandler'),
      ) ?? ['', {}];
      const [, parts] = fn.Properties.Environment.Variables.CONSOLE_OIDC['Fn::Join'] as [string, Json[]];
      const text = parts.map((part) => (typeof part === 'string' ? part : `arn-of-${part.Ref}`)).join('');

      // Act
      const parsed = consoleOidcEnvSchema.parse(JSON.parse(text));

      // Assess
      expect(parsed).toEqual({
        issuer: 'https://issuer.example.com',
        clientId: 'console-client',
        scopes: ['openid'],
        sessionSeconds: 28_800,
        sessionKeySecretId: expect.stringMatching(/^arn-of-ApiConsoleSessionKey/),
        clientSecretId: 'sd35/console-client',
      });
    });

    it('lets the API function read the session key and the client secret', () => {
      const reads = apiStatements(withConsole).filter((s) =>
        actionsOf(s).includes('secretsmanager:GetSecretValue'),
      );
      const resources = JSON.stringify(reads.map((s) => s.Resource));
      expect(resources).toContain('ApiConsoleSessionKey');
      expect(resources).toContain('secret:sd35/console-client-??????');
    });

    it('outputs the redirect URI to register at the issuer', () => {
      const outputs = withConsole.findOutputs('ConsoleRedirectUri');
      expect(JSON.stringify(outputs)).toContain('/console/auth/callback');
    });

    it('serves no console and opens no route without the console setting', () => {
      const plain = synth({ apiAuth: auth });
      const keys = Object.values(plain.findResources('AWS::ApiGatewayV2::Route')).map(
        (r) => r.Properties.RouteKey,
      );
      expect(keys.sort()).toEqual(['ANY /{proxy+}', 'GET /healthz']);
      expect(Object.keys(plain.findOutputs('ConsoleRedirectUri'))).toEqual([]);
    });

    it('fails synth for a console in iam mode, naming the field', () => {
      expect(() => synth({ apiAuth: { mode: 'iam', console: { clientId: 'c' } } })).toThrow(
        /generation\.apiAuth\.console: is served on AWS only with mode "jwt"/,
      );
    });

    it('fails synth for a console without a client id, naming the field', () => {
      expect(() => synth({ apiAuth: { ...auth, console: { clientId: '' } } })).toThrow(
        /generation\.apiAuth\.console\.clientId: must be the client id registered at the issuer/,
      );
    });
  });

  describe('CORS', () => {
    it('sends no CORS headers by default', () => {
      expect(JSON.stringify(template.findResources('AWS::ApiGatewayV2::Api'))).not.toContain(
        'CorsConfiguration',
      );
    });

    it('allows the configured origins only, with the bearer and idempotency headers', () => {
      const cors = synth({ apiCors: { allowOrigins: ['https://app.example.com'] } });
      cors.hasResourceProperties('AWS::ApiGatewayV2::Api', {
        CorsConfiguration: Match.objectLike({
          AllowOrigins: ['https://app.example.com'],
          AllowHeaders: ['authorization', 'content-type', 'idempotency-key'],
          AllowCredentials: false,
          MaxAge: 600,
        }),
      });
    });

    it('fails synth for an origin with a path, naming the field', () => {
      expect(() => synth({ apiCors: { allowOrigins: ['https://app.example.com/x'] } })).toThrow(
        /generation\.apiCors\.allowOrigins\.0: must be an origin/,
      );
    });
  });

  it('may start executions of this state machine only, and never list them', () => {
    const statement = apiStatements(template).find((s) => actionsOf(s).includes('states:StartExecution'));
    expect(actionsOf(statement!).sort()).toEqual(['states:StartExecution']);
    expect(statement!.Resource.Ref).toMatch(/^WorkflowStateMachine/);
  });

  it('may describe and stop this state machine’s executions only, never read their history', () => {
    const statement = apiStatements(template).find((s) => actionsOf(s).includes('states:DescribeExecution'));
    expect(actionsOf(statement!).sort()).toEqual(['states:DescribeExecution', 'states:StopExecution']);
    expect(JSON.stringify(statement!.Resource)).toMatch(/:execution:/);
    expect(JSON.stringify(statement!.Resource)).toMatch(/WorkflowStateMachine.*Name/);
  });

  it('has no wildcard Step Functions action or resource', () => {
    for (const statement of apiStatements(template).filter((s) =>
      actionsOf(s).some((a) => a.startsWith('states:')),
    )) {
      expect(actionsOf(statement).some((a) => a.includes('*'))).toBe(false);
      expect(statement.Resource).not.toBe('*');
    }
  });

  it('reads generations/ (to presign) and writes only a batch’s requests and rejected lines, never deletes', () => {
    const s3 = apiStatements(template).filter((s) => actionsOf(s).some((a) => a.startsWith('s3:')));
    expect(s3.length).toBeGreaterThan(0);
    for (const statement of s3) {
      expect(actionsOf(statement).some((a) => a.startsWith('s3:Delete'))).toBe(false);
      const resources = JSON.stringify(statement.Resource);
      if (actionsOf(statement).includes('s3:PutObject')) {
        expect(resources).toMatch(/requests\/batches\/\*|\/batches\/\*/);
        expect(resources).not.toContain('generations/');
      }
    }
    expect(JSON.stringify(s3)).toContain('generations/*');
  });

  it('passes the state machine ARN, bucket and URL expiry to the Lambda', () => {
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectLike({
          STATE_MACHINE_ARN: { Ref: Match.stringLikeRegexp('^WorkflowStateMachine') },
          URL_EXPIRY_SECONDS: '3600',
        }),
      },
    });
  });
});

describe('HTTP API throttling', () => {
  const stageThrottle = (template: Template) => {
    const stages = Object.values(template.findResources('AWS::ApiGatewayV2::Stage'));
    expect(stages).toHaveLength(1);
    return stages[0]?.Properties.DefaultRouteSettings;
  };

  it('throttles every route of the stage by default', () => {
    expect(stageThrottle(synth())).toMatchObject({ ThrottlingRateLimit: 50, ThrottlingBurstLimit: 100 });
  });

  it('takes the rate and burst from the configuration', () => {
    const template = synth({ apiThrottle: { rateLimit: 5, burstLimit: 10 } });
    expect(stageThrottle(template)).toMatchObject({ ThrottlingRateLimit: 5, ThrottlingBurstLimit: 10 });
  });

  it('fails synth for a burst over the account limit, naming the field', () => {
    expect(() => synth({ apiThrottle: { burstLimit: 6000 } })).toThrow(/generation\.apiThrottle\.burstLimit/);
  });
});

describe('presigned URL lifetime', () => {
  it('fails synth for urlExpirySeconds past 12 hours, naming the field and why', () => {
    expect(() => synth({ urlExpirySeconds: 604_800 })).toThrow(
      /generation\.urlExpirySeconds: must be at most 43200 \(12 hours/,
    );
  });

  it('accepts 12 hours exactly', () => {
    synth({ urlExpirySeconds: 43_200 }).hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike({ URL_EXPIRY_SECONDS: '43200' }) },
    });
  });
});

describe('the API with several DashScope accounts', () => {
  it('may read every account’s key, so a cancel reaches a task on any of them', () => {
    const { template } = synthesize(admissionDeployment(2, 2));

    const reads = statementsOf(template, 'ApiHandler').filter((s) =>
      actionsOf(s).includes('secretsmanager:GetSecretValue'),
    );
    const resources = JSON.stringify(reads.map((s) => s.Resource));

    expect(resources).toContain('secret:sd35/account-0-??????');
    expect(resources).toContain('secret:sd35/account-1-??????');
  });
});

describe('writes to the generations table', () => {
  it('reach the admission queue’s items only through the queue’s own scoped grants', () => {
    const { template } = synthesize();

    for (const prefix of FUNCTION_PREFIXES) {
      const updates = statementsOf(template, prefix).filter((s) =>
        actionsOf(s).some((action) => action === 'dynamodb:UpdateItem' || action === 'dynamodb:*'),
      );
      for (const update of updates) {
        const keys = JSON.stringify(update.Condition ?? {});
        // Either only admission# keys (the queue, or its lanes' counters alone) or never them (generation records).
        expect(keys, `${prefix}: ${JSON.stringify(update)}`).toMatch(
          /"ForAllValues:String(Not)?Like":\{"dynamodb:LeadingKeys":\["admission#(\*|dispatcher)"\]\}/,
        );
      }
    }
  });
});
