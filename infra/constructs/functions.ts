import path from 'node:path';
import { Duration } from 'aws-cdk-lib';
import { EventBus, type IEventBus, Rule, Schedule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { type ISecret, Secret } from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { admitSpec } from '../../functions/admit/spec.js';
import { dispatchSpec } from '../../functions/dispatch/spec.js';
import { notifySpec } from '../../functions/notify/spec.js';
import { persistSpec } from '../../functions/persist/spec.js';
import { pollSpec } from '../../functions/poll/spec.js';
import type { dashscopeVariables } from '../../functions/shared/config.js';
import type { EnvironmentValues } from '../../functions/shared/env-spec.js';
import { submitSpec } from '../../functions/submit/spec.js';
import { accountsOf, admissionSettingsOf, type StackConfig } from '../config.js';
import { acknowledge } from '../nag.js';
import type { DeadLetterQueue } from './dead-letter-queue.js';
import { GenerationFunction } from './generation-function.js';
import type { GenerationsTable } from './generations-table.js';
import { MEMORY_MB, POLL_TIMEOUT } from './lambda-sizing.js';
import type { Grantee, Storage } from './storage.js';
import { workflowStateMachineArn } from './workflow.js';

const FUNCTIONS_DIR = path.join(import.meta.dirname, '..', '..', 'functions');

/** Persist's native packages, installed beside its bundle for linux-arm64 (sharp, for thumbnails). */
export const PERSIST_NODE_MODULES = ['sharp'] as const;

/** The values of the DashScope variables, as a construct gives them. */
export type DashScopeVariables = EnvironmentValues<typeof dashscopeVariables>;

export interface FunctionsProps {
  /**
   * The stack's configuration (infra/config.ts): here the DashScope endpoint, accounts and key
   * secrets, the deadline, run-time model and admission settings, the result hosts and image size
   * cap, the bus's name, webhooks on or off, and each function's reserved concurrency.
   */
  readonly config: StackConfig;
  /** The images bucket: Persist stores each generation under `generations/`, Notify its webhook record. */
  readonly storage: Storage;
  /** The generations index and admission queue every function records its step in. */
  readonly index: GenerationsTable;
}

/**
 * The workflow's Lambdas (admit, submit, poll, persist, notify) and the admission dispatcher, each
 * granted only what it uses (the admission queue's actions: docs/security.md):
 * - Submit and Poll: read the DashScope key; update the generations index;
 * - Persist: read the key; read, write and delete objects under `generations/`; list the bucket;
 * - Notify: publish to the bus; read the webhook secret; write `generations/{id}/webhook.json`;
 *   update the generations index.
 */
export class Functions extends Construct {
  readonly submit: GenerationFunction;
  readonly poll: GenerationFunction;
  readonly persist: GenerationFunction;
  /** Publishes completion events and delivers webhooks at the end of every execution. */
  readonly notify: GenerationFunction;
  /** Signs webhooks (Standard Webhooks); absent when webhooks are off. */
  readonly webhookSecret?: Secret;
  /** The bus completion events go to. */
  readonly eventBus: IEventBus;
  /** The DashScope API key secret; each function that calls DashScope is granted read. */
  readonly apiKeySecret: ISecret;
  /** Waits a generation in the admission queue (the Admit state's function). */
  readonly admit: GenerationFunction;
  /** Grants admission slots: on every kick and once a minute. */
  readonly dispatcher: GenerationFunction;
  /** Every configured DashScope account's key. */
  readonly accountSecrets: ISecret[];
  /** The DashScope variables every DashScope-calling function gets (the API's too). */
  readonly dashscopeEnvironment: DashScopeVariables;

  constructor(scope: Construct, id: string, props: FunctionsProps) {
    super(scope, id);
    const { config, storage, index } = props;
    const bucket = storage.bucket;
    const table = index.table.tableName;
    const apiKey = Secret.fromSecretNameV2(this, 'DashScopeApiKey', config.dashscopeApiKeySecretName);
    this.apiKeySecret = apiKey;
    // Each configured account's key; with one account, the single-key variables as before.
    const accounts = accountsOf(config);
    this.accountSecrets = config.dashscopeAccounts
      ? accounts.map((account) =>
          Secret.fromSecretNameV2(this, `DashScopeApiKey-${account.name}`, account.apiKeySecretName),
        )
      : [apiKey];
    const dashscopeEnv = {
      DASHSCOPE_BASE_URL: config.dashscopeBaseUrl,
      DASHSCOPE_API_KEY_SECRET_ID: config.dashscopeApiKeySecretName,
      DASHSCOPE_WORKSPACE: config.dashscopeWorkspace,
      DASHSCOPE_ACCOUNTS: config.dashscopeAccounts
        ? accounts.map((account) => ({
            name: account.name,
            secretId: account.apiKeySecretName,
            ...(account.workspace ? { workspace: account.workspace } : {}),
          }))
        : undefined,
    };

    // The dispatcher grants admission slots, on every kick and once a minute (the sweep). Its
    // runs take turns through a lease in the table, not reserved concurrency: AWS keeps 100 of an
    // account's concurrency unreserved, more than a new account has (docs/admission.md).
    this.dispatcher = new GenerationFunction(this, 'Dispatcher', {
      config,
      entry: path.join(FUNCTIONS_DIR, 'dispatch', 'handler.ts'),
      // A run grants at most the free slots, 2 per second per account; an invocation runs again
      // while kicks come, until 20 s are left (then it hands the lease off).
      timeout: Duration.minutes(1),
      memorySize: MEMORY_MB.dispatch,
      environment: dispatchSpec.encode({ GENERATIONS_TABLE: table, ADMISSION: admissionSettingsOf(config) }),
    });
    index.grant(this.dispatcher, 'read');
    index.grantQueue(this.dispatcher, 'view', 'grant', 'release');
    // The state machine is named, not referenced: it depends on these functions (a cycle otherwise).
    this.dispatcher.addToRolePolicy(
      new PolicyStatement({
        actions: ['states:SendTaskSuccess', 'states:SendTaskFailure'],
        resources: [workflowStateMachineArn(this)],
      }),
    );
    const dispatcherName = this.dispatcher.functionName;

    this.admit = new GenerationFunction(this, 'Admit', {
      config,
      reservedConcurrentExecutions: config.reservedConcurrency.admit,
      entry: path.join(FUNCTIONS_DIR, 'admit', 'handler.ts'),
      timeout: Duration.seconds(30),
      memorySize: MEMORY_MB.admit,
      environment: admitSpec.encode({
        GENERATIONS_TABLE: table,
        DISPATCHER_FUNCTION: dispatcherName,
        RUN_TIME_MODEL: config.runTimeModel,
      }),
    });

    this.submit = new GenerationFunction(this, 'Submit', {
      config,
      reservedConcurrentExecutions: config.reservedConcurrency.submit,
      entry: path.join(FUNCTIONS_DIR, 'submit', 'handler.ts'),
      // A submit waits up to 30 s for DashScope: a lost answer is costly (see docs/decisions/0004-submitting-twice.md).
      timeout: Duration.seconds(45),
      memorySize: MEMORY_MB.submit,
      environment: submitSpec.encode({
        ...dashscopeEnv,
        GENERATIONS_TABLE: table,
        DISPATCHER_FUNCTION: dispatcherName,
        DEADLINE_SECONDS: config.deadlineSeconds,
        RUN_TIME_MODEL: config.runTimeModel,
      }),
    });
    this.poll = new GenerationFunction(this, 'Poll', {
      config,
      reservedConcurrentExecutions: config.reservedConcurrency.poll,
      entry: path.join(FUNCTIONS_DIR, 'poll', 'handler.ts'),
      // A Poll may keep querying within its invocation near the task's end (tail polling).
      timeout: POLL_TIMEOUT,
      memorySize: MEMORY_MB.poll,
      environment: pollSpec.encode({
        ...dashscopeEnv,
        GENERATIONS_TABLE: table,
        DISPATCHER_FUNCTION: dispatcherName,
      }),
    });
    this.persist = new GenerationFunction(this, 'Persist', {
      config,
      reservedConcurrentExecutions: config.reservedConcurrency.persist,
      entry: path.join(FUNCTIONS_DIR, 'persist', 'handler.ts'),
      // The thumbnails' image library is native: installed for arm64 beside the bundle, and only here.
      nodeModules: PERSIST_NODE_MODULES,
      // Four images of a few MB each, streamed; generous for slow cross-region downloads.
      timeout: Duration.minutes(5),
      memorySize: MEMORY_MB.persist,
      environment: persistSpec.encode({
        ...dashscopeEnv,
        BUCKET_NAME: bucket.bucketName,
        RESULT_HOSTS: config.resultHosts,
        MAX_IMAGE_BYTES: config.maxImageBytes,
      }),
    });

    this.eventBus = EventBus.fromEventBusName(this, 'Bus', config.eventBusName);
    if (config.webhooks) {
      this.webhookSecret = new Secret(this, 'WebhookSigningSecret', {
        description: 'Signs webhook deliveries (Standard Webhooks); share it with your receivers',
        generateSecretString: { passwordLength: 48, excludePunctuation: true },
      });
      acknowledge(
        this.webhookSecret,
        'AwsSolutions-SMG4',
        'The webhook signing secret is shared with every webhook receiver, which must change its copy in step: rotation is a manual, coordinated act (see docs/security.md), not a schedule',
      );
    }
    this.notify = new GenerationFunction(this, 'Notify', {
      config,
      reservedConcurrentExecutions: config.reservedConcurrency.notify,
      entry: path.join(FUNCTIONS_DIR, 'notify', 'handler.ts'),
      // Webhook retries with backoff are bounded well inside this.
      timeout: Duration.minutes(2),
      memorySize: MEMORY_MB.notify,
      environment: notifySpec.encode({
        EVENT_BUS_NAME: config.eventBusName,
        BUCKET_NAME: bucket.bucketName,
        GENERATIONS_TABLE: table,
        DISPATCHER_FUNCTION: dispatcherName,
        WEBHOOK_SECRET_ID: this.webhookSecret?.secretName,
      }),
    });
    this.eventBus.grantPutEventsTo(this.notify);
    this.webhookSecret?.grantRead(this.notify);
    storage.grantObjects(this.notify, {
      keys: 'generations/*/webhook.json',
      actions: ['s3:PutObject'],
      why: 'Notify writes one webhook delivery record per generation, generations/{id}/webhook.json; the id is the execution name, known only at run time',
    });

    this.dashscopeEnvironment = dashscopeEnv;
    for (const fn of [this.submit, this.poll, this.persist]) {
      for (const secret of this.accountSecrets) secret.grantRead(fn);
    }
    // Submit, Poll and Notify record each step of a generation (conditional updates only), and
    // note or release its admission slot; Admit enqueues. All but Submit ring the dispatcher.
    for (const fn of [this.submit, this.poll, this.notify]) index.grant(fn, 'write');
    // Submit reads its slot and the account's recent tasks (a lost answer's orphan), and notes its task.
    index.grantQueue(this.submit, 'view', 'note');
    index.grantQueue(this.poll, 'note', 'release');
    index.grantQueue(this.notify, 'release');
    index.grantQueue(this.admit, 'enqueue');
    for (const fn of [this.admit, this.poll, this.notify]) grantKick(fn, this.dispatcher);
    // Persist reads back what an interrupted run stored (idempotent retry), writes the images and
    // the manifest, and deletes what a broken streamed upload may have left: only under generations/.
    storage.grantObjects(this.persist, {
      keys: 'generations/*',
      actions: ['s3:GetObject', 's3:PutObject', 's3:AbortMultipartUpload', 's3:DeleteObject'],
      why: 'Persist writes each generation’s images and manifest under generations/{id}/ (the id is the execution name, known only at run time), reads back what an interrupted run stored, and deletes a broken upload',
    });
    storage.grantList(this.persist);
  }
}

/**
 * The dispatcher's sweep, once a minute: entries past `maxQueueSeconds`, slots whose release was
 * lost, grants whose resume was lost. A tick EventBridge could not deliver goes to the dead-letter
 * queue like every other rule's, though the next tick makes up for it.
 */
export function scheduleDispatcherSweep(
  scope: Construct,
  dispatcher: IFunction,
  deadLetters: DeadLetterQueue,
): Rule {
  return new Rule(scope, 'DispatcherSweep', {
    description: 'The admission dispatcher sweeps once a minute: expired entries, lost releases, lost grants',
    schedule: Schedule.rate(Duration.minutes(1)),
    targets: [new LambdaFunction(dispatcher, deadLetters.targetProps())],
  });
}

/**
 * What completing a batch writes (docs/batches.md): its results and webhook record under
 * `batches/{id}/`, its rejected lines read from there, and a request file's report brought up to
 * the batch's end (`requests/<file>.result`, read and written). Notify and the reconciler both
 * complete batches.
 */
export function grantBatchCompletion(storage: Storage, fn: Grantee): void {
  storage.grantObjects(fn, {
    keys: 'batches/*',
    actions: ['s3:GetObject', 's3:PutObject'],
    why: 'Completing a batch writes batches/{id}/results.jsonl and webhook.json and reads batches/{id}/rejected.json; the batch id is known only at run time',
  });
  storage.grantObjects(fn, {
    keys: 'requests/*.result',
    actions: ['s3:GetObject', 's3:PutObject'],
    why: 'Completing a request file’s batch brings its report, requests/<file>.result, up to the final outcomes; the file is known only at run time',
  });
}

/**
 * Lets `fn` ring the dispatcher: lambda:InvokeFunction on the unqualified function only (CDK's
 * `grantInvoke` adds its versions and aliases, `:*`, which nothing here invokes).
 */
export function grantKick(fn: IFunction, dispatcher: IFunction): void {
  fn.addToRolePolicy(
    new PolicyStatement({ actions: ['lambda:InvokeFunction'], resources: [dispatcher.functionArn] }),
  );
}
