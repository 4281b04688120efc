import { CfnOutput, Stack, type StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import type { StackConfig } from './config.js';
import { Api } from './constructs/api.js';
import { Events } from './constructs/events.js';
import { Functions, scheduleDispatcherSweep } from './constructs/functions.js';
import { GenerationsTable } from './constructs/generations-table.js';
import { Monitoring } from './constructs/monitoring.js';
import { Reconciler } from './constructs/reconciler.js';
import { Storage } from './constructs/storage.js';
import { Workflow } from './constructs/workflow.js';

export interface GenerationStackProps extends StackProps {
  /**
   * The stack's configuration, parsed from the `generation` context key (cdk.json or `-c`) by
   * infra/config.ts, every field with its default filled in.
   */
  readonly config: StackConfig;
}

/**
 * Storage, the workflow Lambdas, the workflow that ties them together, the HTTP API, the event
 * triggers, and the alarms and dashboard that watch them.
 */
export class GenerationStack extends Stack {
  readonly storage: Storage;
  readonly index: GenerationsTable;
  readonly functions: Functions;
  readonly workflow: Workflow;
  readonly api: Api;
  readonly events: Events;
  readonly reconciler: Reconciler;
  readonly monitoring: Monitoring;

  constructor(scope: Construct, id: string, props: GenerationStackProps) {
    super(scope, id, props);
    const { config } = props;
    this.storage = new Storage(this, 'Storage', { config: config.bucket });
    this.index = new GenerationsTable(this, 'Index', {
      retainOnDelete: config.bucket.retainOnDelete,
      encryptionKey: this.storage.encryptionKey,
    });
    this.functions = new Functions(this, 'Functions', { config, storage: this.storage, index: this.index });
    this.workflow = new Workflow(this, 'Workflow', { config, functions: this.functions });
    this.api = new Api(this, 'Api', {
      config,
      stateMachine: this.workflow.stateMachine,
      storage: this.storage,
      index: this.index,
      accountSecrets: this.functions.accountSecrets,
      dashscopeEnvironment: this.functions.dashscopeEnvironment,
    });

    this.events = new Events(this, 'Events', {
      config,
      stateMachine: this.workflow.stateMachine,
      storage: this.storage,
      index: this.index,
      eventBus: this.functions.eventBus,
    });
    scheduleDispatcherSweep(this, this.functions.dispatcher, this.events.deadLetters);
    this.reconciler = new Reconciler(this, 'Reconciler', {
      config,
      stateMachine: this.workflow.stateMachine,
      index: this.index,
      storage: this.storage,
      eventBus: this.functions.eventBus,
      webhookSecret: this.functions.webhookSecret,
      deadLetters: this.events.deadLetters,
      dispatcher: this.functions.dispatcher,
    });

    this.monitoring = new Monitoring(this, 'Monitoring', {
      config,
      stateMachine: this.workflow.stateMachine,
      functions: {
        submit: this.functions.submit,
        poll: this.functions.poll,
        persist: this.functions.persist,
        notify: this.functions.notify,
        api: this.api.handler,
        trigger: this.events.trigger,
        reconcile: this.reconciler.handler,
        admit: this.functions.admit,
        dispatch: this.functions.dispatcher,
      },
      persist: this.functions.persist,
      deadLetterQueues: { Events: this.events.deadLetters.queue },
    });

    new CfnOutput(this, 'BucketName', { value: this.storage.bucket.bucketName });
    if (this.functions.webhookSecret) {
      new CfnOutput(this, 'WebhookSecretArn', { value: this.functions.webhookSecret.secretArn });
    }
    new CfnOutput(this, 'GenerationsTableName', { value: this.index.table.tableName });
    new CfnOutput(this, 'StateMachineArn', { value: this.workflow.stateMachine.stateMachineArn });
    new CfnOutput(this, 'AlarmTopicArn', { value: this.monitoring.topic.topicArn });
    if (this.monitoring.dashboard)
      new CfnOutput(this, 'DashboardName', { value: this.monitoring.dashboard.dashboardName });
  }
}
