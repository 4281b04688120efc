import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import type { StackConfig } from './config.js';
import { Api } from './constructs/api.js';
import { Functions } from './constructs/functions.js';
import { Storage } from './constructs/storage.js';
import { Workflow } from './constructs/workflow.js';

export interface GenerationStackProps extends StackProps {
  readonly config: StackConfig;
}

/** Storage, the three workflow Lambdas, the workflow that ties them together, and the HTTP API. */
export class GenerationStack extends Stack {
  readonly storage: Storage;
  readonly functions: Functions;
  readonly workflow: Workflow;
  readonly api: Api;

  constructor(scope: Construct, id: string, props: GenerationStackProps) {
    super(scope, id, props);
    this.storage = new Storage(this, 'Storage');
    this.functions = new Functions(this, 'Functions', { config: props.config, bucket: this.storage.bucket });
    this.workflow = new Workflow(this, 'Workflow', { config: props.config, functions: this.functions });
    this.api = new Api(this, 'Api', {
      config: props.config,
      stateMachine: this.workflow.stateMachine,
      bucket: this.storage.bucket,
      apiKeySecret: this.functions.apiKeySecret,
      dashscopeEnvironment: this.functions.dashscopeEnvironment,
    });

    new CfnOutput(this, 'BucketName', { value: this.storage.bucket.bucketName });
    new CfnOutput(this, 'StateMachineArn', { value: this.workflow.stateMachine.stateMachineArn });
  }
}
