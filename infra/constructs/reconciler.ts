import path from 'node:path';
import { Duration } from 'aws-cdk-lib';
import { type IEventBus, Rule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import type { ISecret } from 'aws-cdk-lib/aws-secretsmanager';
import type { StateMachine } from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { reconcileSpec } from '../../functions/notify/spec.js';
import type { StackConfig } from '../config.js';
import { announcementDeadLetters, type DeadLetterQueue } from './dead-letter-queue.js';
import { grantOnExecutions } from './execution-grants.js';
import { grantBatchCompletion, grantKick } from './functions.js';
import { GenerationFunction } from './generation-function.js';
import type { GenerationsTable } from './generations-table.js';
import type { Storage } from './storage.js';

export interface ReconcilerProps {
  /** The stack's configuration (infra/config.ts): here the bus's name, and the function's log settings. */
  readonly config: StackConfig;
  /** The generation workflow whose executions' status changes are reconciled. */
  readonly stateMachine: StateMachine;
  /** The generations index, converged on every execution's end; its admission slots are freed. */
  readonly index: GenerationsTable;
  /** The images bucket, where an announcement writes its webhook record (`generations/{id}/webhook.json`). */
  readonly storage: Storage;
  /** The bus an end Notify did not announce is announced on (`config.eventBusName`). */
  readonly eventBus: IEventBus;
  /**
   * Signs the webhooks of the ends it announces (`Functions.webhookSecret`).
   * @default none: webhooks are off, and no webhook is delivered
   */
  readonly webhookSecret?: ISecret;
  /**
   * Where events that could not be delivered after a day of retries land, and those the reconciler
   * failed on after Lambda's retries.
   */
  readonly deadLetters: DeadLetterQueue;
  /** Rung when an ended execution's admission slot is freed. */
  readonly dispatcher: IFunction;
}

/**
 * Step Functions' execution status-change events (on the default bus, always) → the reconciler
 * Lambda, which records every started execution in the generations index, converges the index on
 * every execution's end when the workflow's own write was lost, and announces the ends Notify did
 * not (stopped, timed out, failed or succeeded without reaching Notify) as Notify would: the
 * event and the webhook, an event EventBridge refuses going to the announcements dead-letter
 * queue. EventBridge retries an invocation it could not make for up to a day; Lambda retries a
 * failed one twice; either then leaves the event in the dead-letter queue (`deadLetters`).
 */
export class Reconciler extends Construct {
  readonly handler: GenerationFunction;

  constructor(scope: Construct, id: string, props: ReconcilerProps) {
    super(scope, id);
    const { config, stateMachine } = props;
    this.handler = new GenerationFunction(this, 'Handler', {
      config,
      entry: path.join(import.meta.dirname, '..', '..', 'functions', 'notify', 'reconcile-handler.ts'),
      // An announcement may deliver a webhook with its retries, as Notify does.
      timeout: Duration.minutes(2),
      environment: reconcileSpec.encode({
        GENERATIONS_TABLE: props.index.table.tableName,
        STATE_MACHINE_ARN: stateMachine.stateMachineArn,
        EVENT_BUS_NAME: config.eventBusName,
        BUCKET_NAME: props.storage.bucket.bucketName,
        DISPATCHER_FUNCTION: props.dispatcher.functionName,
        WEBHOOK_SECRET_ID: props.webhookSecret?.secretName,
      }),
    });
    props.index.grant(this.handler, 'read', 'write');
    props.index.grantQueue(this.handler, 'release');
    grantKick(this.handler, props.dispatcher);
    props.eventBus.grantPutEventsTo(this.handler);
    announcementDeadLetters(this).acceptFrom(this.handler);
    // A status change the reconciler failed on (the index unreachable), after Lambda's 2 retries.
    props.deadLetters.catchFailuresOf(
      this.handler,
      'execution status changes the reconciler failed on after its retries',
    );
    props.webhookSecret?.grantRead(this.handler);
    props.storage.grantObjects(this.handler, {
      keys: 'generations/*/webhook.json',
      actions: ['s3:PutObject'],
      why: 'The reconciler announces an end Notify did not (a stop, a timeout) as Notify does, writing its webhook delivery record generations/{id}/webhook.json; the id is the execution name, known only at run time',
    });
    grantBatchCompletion(props.storage, this.handler);
    grantOnExecutions(
      this,
      this.handler.role,
      stateMachine,
      ['states:DescribeExecution'],
      'The reconciler reads an execution whose status-change event left out its input or output (too large to include); every execution has its own ARN, so the grant is all executions of this one state machine, read only',
    );

    new Rule(this, 'StatusChanged', {
      description: 'Every status change of the generation workflow → the reconciler',
      eventPattern: {
        source: ['aws.states'],
        detailType: ['Step Functions Execution Status Change'],
        detail: { stateMachineArn: [stateMachine.stateMachineArn] },
      },
      targets: [new LambdaFunction(this.handler, props.deadLetters.targetProps())],
    });
  }
}
