import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import type { StackConfig } from './config.js';
import { Functions } from './constructs/functions.js';
import { Storage } from './constructs/storage.js';
import { Workflow } from './constructs/workflow.js';

export interface GenerationStackProps extends StackProps {
  readonly config: StackConfig;
}

/** Storage, the three Lambdas and the workflow that ties them together. */
export class GenerationStack extends Stack {
  readonly storage: Storage;
  readonly functions: Functions;
  readonly workflow: Workflow;

  constructor(scope: Construct, id: string, props: GenerationStackProps) {
    super(scope, id, props);
    this.storage = new Storage(this, 'Storage');
    this.functions = new Functions(this, 'Functions', { config: props.config, bucket: this.storage.bucket });
    this.workflow = new Workflow(this, 'Workflow', { config: props.config, functions: this.functions });

    new CfnOutput(this, 'BucketName', { value: this.storage.bucket.bucketName });
    new CfnOutput(this, 'StateMachineArn', { value: this.workflow.stateMachine.stateMachineArn });
  }
}
