import path from 'node:path';
import { ArnFormat, CfnOutput, Duration, Stack } from 'aws-cdk-lib';
import {
  HttpApi,
  HttpMethod,
  HttpNoneAuthorizer,
  type IHttpRouteAuthorizer,
} from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpIamAuthorizer, HttpJwtAuthorizer } from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { IBucket } from 'aws-cdk-lib/aws-s3';
import type { ISecret } from 'aws-cdk-lib/aws-secretsmanager';
import type { StateMachine } from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import type { StackConfig } from '../config.js';
import { GenerationFunction } from './generation-function.js';

export interface ApiProps {
  readonly config: StackConfig;
  readonly stateMachine: StateMachine;
  readonly bucket: IBucket;
  readonly apiKeySecret: ISecret;
  /** Environment shared by every function that calls DashScope. */
  readonly dashscopeEnvironment: Record<string, string>;
}

/**
 * API Gateway (HTTP API) → one Hono Lambda. IAM (SigV4) authorizes every route by default, or a
 * JWT authorizer when configured; only `GET /healthz` is open. The Lambda may start, describe,
 * stop and list executions of this state machine only, read its history, presign reads under
 * `generations/`, and read the DashScope key (to cancel PENDING tasks).
 */
export class Api extends Construct {
  readonly httpApi: HttpApi;
  readonly handler: GenerationFunction;

  constructor(scope: Construct, id: string, props: ApiProps) {
    super(scope, id);
    const { config, stateMachine } = props;

    this.handler = new GenerationFunction(this, 'Handler', {
      entry: path.join(import.meta.dirname, '..', '..', 'functions', 'api', 'handler.ts'),
      timeout: Duration.seconds(29),
      environment: {
        ...props.dashscopeEnvironment,
        STATE_MACHINE_ARN: stateMachine.stateMachineArn,
        BUCKET_NAME: props.bucket.bucketName,
        URL_EXPIRY_SECONDS: String(config.urlExpirySeconds),
      },
    });

    const executions = Stack.of(this).formatArn({
      service: 'states',
      resource: 'execution',
      resourceName: `${stateMachine.stateMachineName}:*`,
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    });
    this.handler.addToRolePolicy(
      new PolicyStatement({
        actions: ['states:StartExecution', 'states:ListExecutions'],
        resources: [stateMachine.stateMachineArn],
      }),
    );
    this.handler.addToRolePolicy(
      new PolicyStatement({
        actions: ['states:DescribeExecution', 'states:StopExecution', 'states:GetExecutionHistory'],
        resources: [executions],
      }),
    );
    props.bucket.grantRead(this.handler, 'generations/*');
    props.apiKeySecret.grantRead(this.handler);

    const integration = new HttpLambdaIntegration('Integration', this.handler);
    this.httpApi = new HttpApi(this, 'HttpApi', {
      description: 'SD 3.5 generations',
      defaultAuthorizer: authorizerFor(config),
      createDefaultStage: true,
    });
    this.httpApi.addRoutes({ path: '/{proxy+}', methods: [HttpMethod.ANY], integration });
    this.httpApi.addRoutes({
      path: '/healthz',
      methods: [HttpMethod.GET],
      integration,
      authorizer: new HttpNoneAuthorizer(),
    });

    new CfnOutput(Stack.of(this), 'ApiUrl', { value: this.httpApi.apiEndpoint });
  }
}

function authorizerFor(config: StackConfig): IHttpRouteAuthorizer {
  if (config.apiAuth.mode === 'jwt') {
    return new HttpJwtAuthorizer('JwtAuthorizer', config.apiAuth.issuer, {
      jwtAudience: config.apiAuth.audience,
    });
  }
  return new HttpIamAuthorizer();
}
