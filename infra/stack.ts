import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import type { StackConfig } from './config.js';
import { Api } from './constructs/api.js';
import { Events } from './constructs/events.js';
import { Functions } from './constructs/functions.js';
import { Storage } from './constructs/storage.js';
import { Workflow } from './constructs/workflow.js';

export interface GenerationStackProps extends StackProps {
  readonly config: StackConfig;
}

/** Storage, the workflow Lambdas, the workflow that ties them together, the HTTP API and the event triggers. */
export class GenerationStack extends Stack {
  readonly storage: Storage;
  readonly functions: Functions;
  readonly workflow: Workflow;
  readonly api: Api;
  readonly events: Events;

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

    this.events = new Events(this, 'Events', {
      config: props.config,
      stateMachine: this.workflow.stateMachine,
      bucket: this.storage.bucket,
      eventBus: this.functions.eventBus,
    });

    new CfnOutput(this, 'BucketName', { value: this.storage.bucket.bucketName });
    if (this.functions.webhookSecret) {
      new CfnOutput(this, 'WebhookSecretArn', { value: this.functions.webhookSecret.secretArn });
    }
    new CfnOutput(this, 'StateMachineArn', { value: this.workflow.stateMachine.stateMachineArn });
  }
}
