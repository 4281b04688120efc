import path from 'node:path';
import { CfnOutput, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import {
  CorsHttpMethod,
  type CorsPreflightOptions,
  HttpApi,
  HttpMethod,
  HttpNoneAuthorizer,
  type HttpStage,
  type IHttpRouteAuthorizer,
  LogGroupLogDestination,
} from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpIamAuthorizer, HttpJwtAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import { LogGroup } from 'aws-cdk-lib/aws-logs';
import { type ISecret, Secret } from 'aws-cdk-lib/aws-secretsmanager';
import type { StateMachine } from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { apiSpec } from '../../functions/api/spec.js';
import { admissionSettingsOf, type ConsoleSignInConfig, type StackConfig } from '../config.js';
import { acknowledge } from '../nag.js';
import { grantOnExecutions } from './execution-grants.js';
import type { DashScopeVariables } from './functions.js';
import { GenerationFunction } from './generation-function.js';
import type { GenerationsTable } from './generations-table.js';
import type { Storage } from './storage.js';

export interface ApiProps {
  /**
   * The stack's configuration (infra/config.ts, cdk.json context `generation`): here how the API
   * authorizes (`apiAuth`, with the console's sign-in), CORS, throttling, how long a download link
   * lasts, the default model, the admission settings and the log retention.
   */
  readonly config: StackConfig;
  /** The generation workflow: the API starts, describes and stops executions of this one only. */
  readonly stateMachine: StateMachine;
  /** The images bucket: the API presigns reads of what is stored under `generations/`. */
  readonly storage: Storage;
  /**
   * The generations index: every read is served from it, a new generation is registered in it
   * before its execution starts, and a cancel takes a waiting generation out of its admission queue.
   */
  readonly index: GenerationsTable;
  /** Every DashScope account's key: a cancel reaches a PENDING task on the account that runs it. */
  readonly accountSecrets: readonly ISecret[];
  /** Environment shared by every function that calls DashScope (`Functions.dashscopeEnvironment`). */
  readonly dashscopeEnvironment: DashScopeVariables;
}

/**
 * API Gateway (HTTP API) → one Hono Lambda. IAM (SigV4) authorizes every route by default, or a
 * JWT authorizer when configured; only `GET /healthz` is open. The Lambda reads the generations
 * index, registers and cancels generations in it, starts, describes and stops executions of this
 * state machine only, presigns reads under
 * `generations/`, and read the DashScope key (to cancel PENDING tasks). Every request is written
 * to an access log (who, which route, status, latency; never a body). The stage throttles every
 * route to the configured rate and burst (`apiThrottle`).
 */
export class Api extends Construct {
  readonly httpApi: HttpApi;
  readonly stage: HttpStage;
  readonly handler: GenerationFunction;
  readonly accessLogs: LogGroup;

  constructor(scope: Construct, id: string, props: ApiProps) {
    super(scope, id);
    const { config, stateMachine } = props;

    this.handler = new GenerationFunction(this, 'Handler', {
      config,
      entry: path.join(import.meta.dirname, '..', '..', 'functions', 'api', 'handler.ts'),
      timeout: Duration.seconds(29),
      environment: apiSpec.encode({
        ...props.dashscopeEnvironment,
        STATE_MACHINE_ARN: stateMachine.stateMachineArn,
        GENERATIONS_TABLE: props.index.table.tableName,
        BUCKET_NAME: props.storage.bucket.bucketName,
        URL_EXPIRY_SECONDS: config.urlExpirySeconds,
        DEFAULT_MODEL: config.defaultModel,
        // Queue positions and start estimates of waiting generations.
        ADMISSION: admissionSettingsOf(config),
        // Their runs before the dispatcher has observed an account's pace: Admit's own model.
        RUN_TIME_MODEL: config.runTimeModel,
      }),
    });
    const consoleSignIn = config.apiAuth.mode === 'jwt' ? config.apiAuth.console : undefined;
    if (config.apiAuth.mode === 'jwt' && consoleSignIn) {
      this.handler.addVariables({
        CONSOLE_OIDC: this.consoleSecrets(config.apiAuth.issuer, consoleSignIn),
      });
    }

    this.handler.addToRolePolicy(
      new PolicyStatement({ actions: ['states:StartExecution'], resources: [stateMachine.stateMachineArn] }),
    );
    // Describe only when a start finds the name taken; reads are served by the index.
    grantOnExecutions(
      this,
      this.handler.role,
      stateMachine,
      ['states:DescribeExecution', 'states:StopExecution'],
      'Every execution has its own ARN (state machine name : execution name), and the API describes and stops executions whose names it learns at run time: the grant is all executions of this one state machine',
    );
    props.storage.grantObjects(this.handler, {
      keys: 'generations/*',
      actions: ['s3:GetObject'],
      why: 'The API presigns download links for any stored image of any generation: images live under generations/{id}/, ids known only at run time. Read only',
    });
    props.storage.grantObjects(this.handler, {
      keys: 'requests/batches/*',
      actions: ['s3:PutObject'],
      why: 'POST /v1/batches writes the batch’s requests to requests/batches/{id}.jsonl, which the trigger starts like any request file; the batch id is made at run time. Write only, under that prefix',
    });
    props.storage.grantObjects(this.handler, {
      keys: 'batches/*',
      actions: ['s3:GetObject', 's3:PutObject'],
      why: 'The API keeps a new batch’s rejected lines at batches/{id}/rejected.json, shows them on the console’s batch page, and presigns its results file batches/{id}/results.jsonl; the batch id is known only at run time',
    });
    for (const secret of props.accountSecrets) secret.grantRead(this.handler);
    // Reads answer every GET; the one write (UpdateItem) registers a new generation before its
    // execution starts (so a GET right after the 202 finds it, with its caller) and records a cancel.
    // The queue: a waiting generation's position, and a cancel takes it out of the queue at once.
    props.index.grant(this.handler, 'read', 'write');
    props.index.grantQueue(this.handler, 'view', 'release');

    const integration = new HttpLambdaIntegration('Integration', this.handler);
    this.httpApi = new HttpApi(this, 'HttpApi', {
      description: 'SD 3.5 generations',
      defaultAuthorizer: authorizerFor(config),
      corsPreflight: corsFor(config),
      // The default stage is added below, with access logs, which HttpApi's own cannot have.
      createDefaultStage: false,
    });
    this.accessLogs = new LogGroup(this, 'AccessLogs', {
      retention: config.logRetentionDays,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.stage = this.httpApi.addStage('DefaultStage', {
      stageName: '$default',
      autoDeploy: true,
      throttle: { rateLimit: config.apiThrottle.rateLimit, burstLimit: config.apiThrottle.burstLimit },
      accessLogSettings: {
        destination: new LogGroupLogDestination(this.accessLogs),
        format: ACCESS_LOG_FORMAT,
      },
    });
    this.httpApi.addRoutes({ path: '/{proxy+}', methods: [HttpMethod.ANY], integration });
    const [health] = this.httpApi.addRoutes({
      path: '/healthz',
      methods: [HttpMethod.GET],
      integration,
      authorizer: new HttpNoneAuthorizer(),
    });
    if (health) {
      acknowledge(
        health,
        'AwsSolutions-APIG4',
        'GET /healthz is the liveness route, open on purpose for load balancers and uptime checks: it answers {"status":"ok"} and reads nothing',
      );
    }

    if (consoleSignIn) this.addConsoleRoutes(integration);

    new CfnOutput(Stack.of(this), 'ApiUrl', { value: this.httpApi.apiEndpoint });
  }

  /**
   * The console's sign-in settings for the Lambda: the session key, a secret the stack generates
   * (never in the template or an output), and the client secret by name, both readable by the API
   * function only.
   */
  private consoleSecrets(issuer: string, signIn: ConsoleSignInConfig) {
    const sessionKey = new Secret(this, 'ConsoleSessionKey', {
      description: 'Signs the web console session cookies (HMAC key); rotating it signs every browser out',
      generateSecretString: { passwordLength: 64, excludePunctuation: true },
      removalPolicy: RemovalPolicy.DESTROY,
    });
    acknowledge(
      sessionKey,
      'AwsSolutions-SMG4',
      'An HMAC key for console session cookies, read by the API function only; rotating it only signs every browser out (sessions last at most sessionHours), so it is rotated by hand (put a new random value) rather than by a rotation Lambda',
    );
    sessionKey.grantRead(this.handler);
    if (signIn.clientSecretName) {
      Secret.fromSecretNameV2(this, 'ConsoleClientSecret', signIn.clientSecretName).grantRead(this.handler);
    }
    return {
      issuer,
      clientId: signIn.clientId,
      scopes: signIn.scopes,
      sessionSeconds: signIn.sessionHours * 3600,
      sessionKeySecretId: sessionKey.secretArn,
      ...(signIn.clientSecretName ? { clientSecretId: signIn.clientSecretName } : {}),
    };
  }

  /**
   * `/console` and `/console/{proxy+}` without the gateway's authorizer: a browser cannot send a
   * bearer header on a page load, so the app signs it in (OIDC) and checks its session cookie on
   * every console request; every other route keeps the JWT authorizer, and the app refuses a
   * non-console path that reaches it unverified. Outputs the redirect URI to register.
   */
  private addConsoleRoutes(integration: HttpLambdaIntegration): void {
    for (const routePath of ['/console', '/console/{proxy+}']) {
      for (const route of this.httpApi.addRoutes({
        path: routePath,
        methods: [HttpMethod.GET, HttpMethod.POST],
        integration,
        authorizer: new HttpNoneAuthorizer(),
      })) {
        acknowledge(
          route,
          'AwsSolutions-APIG4',
          'The web console: a browser cannot attach a bearer token to a page load, so the Lambda authenticates these routes itself (OIDC authorization code with PKCE, then a signed HttpOnly session cookie checked on every request; see docs/console.md)',
        );
      }
    }
    const stack = Stack.of(this);
    new CfnOutput(stack, 'ConsoleUrl', { value: `${this.httpApi.apiEndpoint}/console/` });
    new CfnOutput(stack, 'ConsoleRedirectUri', {
      description: 'Register this redirect URI for the console client at the OIDC issuer',
      value: `${this.httpApi.apiEndpoint}/console/auth/callback`,
    });
  }
}

/** CORS for pages on other origins that call the API with a bearer token; none by default. */
function corsFor(config: StackConfig): CorsPreflightOptions | undefined {
  if (!config.apiCors) return undefined;
  return {
    allowOrigins: config.apiCors.allowOrigins.map((origin) => origin.replace(/\/$/, '')),
    allowMethods: [CorsHttpMethod.GET, CorsHttpMethod.POST],
    allowHeaders: ['authorization', 'content-type', 'idempotency-key'],
    exposeHeaders: ['idempotent-replayed', 'location'],
    // Bearer tokens, not cookies: the API never needs the browser's credentials mode.
    allowCredentials: false,
    maxAge: Duration.seconds(config.apiCors.maxAgeSeconds),
  };
}

/**
 * One JSON line per request: who (source IP, IAM caller or JWT subject), what (route, status,
 * sizes), how long, and the integration's error if any. Never a body, a query string or a header.
 */
const ACCESS_LOG_FORMAT = AccessLogFormat.custom(
  JSON.stringify({
    requestId: '$context.requestId',
    requestTime: '$context.requestTime',
    sourceIp: '$context.identity.sourceIp',
    caller: '$context.identity.userArn',
    subject: '$context.authorizer.claims.sub',
    routeKey: '$context.routeKey',
    status: '$context.status',
    responseLength: '$context.responseLength',
    latencyMs: '$context.responseLatency',
    integrationLatencyMs: '$context.integrationLatency',
    integrationError: '$context.integrationErrorMessage',
    authorizerError: '$context.authorizer.error',
  }),
);

function authorizerFor(config: StackConfig): IHttpRouteAuthorizer {
  if (config.apiAuth.mode === 'jwt') {
    return new HttpJwtAuthorizer('JwtAuthorizer', config.apiAuth.issuer, {
      jwtAudience: config.apiAuth.audience,
    });
  }
  return new HttpIamAuthorizer();
}
