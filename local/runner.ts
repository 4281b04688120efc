import './polyfills.js';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { S3Client } from '@aws-sdk/client-s3';
import type { StateMachineDefinition } from 'aws-local-stepfunctions';
import type { NotifyDeps } from '../functions/notify/notify.js';
import type { AdmissionQueue, AdmissionSettings } from '../functions/shared/admission.js';
import { createDynamoBatchIndex } from '../functions/shared/aws/dynamodb-batches.js';
import { createDynamoGenerationIndex } from '../functions/shared/aws/dynamodb-index.js';
import type { AdjustableClock, Clock } from '../functions/shared/clock.js';
import type { EventPublisher } from '../functions/shared/events.js';
import type { GenerationIndex } from '../functions/shared/generation-index.js';
import type { Model } from '../functions/shared/generation-request.js';
import { type Logger, silentLogger } from '../functions/shared/logger.js';
import type { RunTimeModelOverrides } from '../functions/shared/run-time-estimate.js';
import type { SecretReader } from '../functions/shared/secret.js';
import { releaseSlot } from '../functions/shared/slot-life.js';
import type { PersistResult, TaskState } from '../functions/shared/workflow-state.js';
import { triggerSpec } from '../functions/trigger/spec.js';
import type { StackConfig } from '../infra/config.js';
import { RunningExecutions, startExecution } from './execution-run.js';
import type { Checkpoint } from './execution-store.js';
import type { LocalDispatcher } from './local-admission.js';
import { localAdmission } from './runner-admission.js';
import { localFunctions } from './runner-functions.js';
import { type LocalFunctionName, localStack } from './runner-stack.js';
import { runnerTime } from './runner-time.js';
import { workflowMachines } from './state-machines.js';
import { type StatusChange, statusChanges } from './status-changes.js';
import type { CloudFormationTemplate } from './synth-cache.js';

export {
  generationsTableDefinition,
  LOCAL_TABLE,
  type LocalFunctionName,
  stateMachineDefinition,
} from './runner-stack.js';
export type { StatusChange } from './status-changes.js';

export interface LocalRunnerOptions {
  /** Where the Lambdas reach DashScope: the emulator or the real service. */
  readonly dashscope: {
    readonly baseUrl: string;
    readonly apiKey: string;
    /** Result hosts to allow instead of the stack's (the emulator serves from 127.0.0.1). */
    readonly resultHosts?: readonly string[];
    /** Accept http result URLs (the emulator only). */
    readonly allowHttpResults?: boolean;
    /**
     * Read the API key from this "secret" as on AWS instead of taking `apiKey` from the
     * environment (tests: a Secrets Manager that fails). Each function caches it for 5 minutes of
     * the runner's clock, as on Lambda.
     */
    readonly apiKeySecret?: { readonly id: string; readonly read: SecretReader };
    /**
     * Several accounts, each its own endpoint and key (emulators), named as the configuration's
     * `dashscopeAccounts` (pass those in `generation` too). @default one account, `baseUrl` and `apiKey`
     */
    readonly accounts?: readonly {
      readonly name: string;
      readonly baseUrl: string;
      readonly apiKey: string;
    }[];
    /**
     * How long this DashScope takes to run a task (the emulator's, at its speed), as the functions
     * that estimate run times read it: their `RUN_TIME_MODEL`, set like the endpoints, so another
     * speed needs no other synthesis. @default the template's (the configuration's `runTimeModel`)
     */
    readonly runTimeModel?: RunTimeModelOverrides;
  };
  readonly s3: { readonly client: S3Client; readonly bucket: string };
  /**
   * The generations index: a DynamoDB-compatible server (dynalite) and the table name, created
   * with {@link generationsTableDefinition}. The functions write to it as on AWS, and the runner
   * plays Step Functions' status-change events to the reconciler. @default no index
   */
  readonly index?: { readonly client: DynamoDBClient; readonly table: string };
  /** @default systemClock */
  readonly clock?: Clock;
  /**
   * Waits in virtual time on this clock (shared with the emulator), in one of two ways:
   * - alone: Wait states and Retry intervals sleep in {@link VirtualTime}, which jumps the clock
   *   whenever every running execution waits, so concurrent executions share one consistent
   *   timeline (the emulator's rate limits and queue see what they would in real time);
   * - with `retryIntervalMs`: each Wait moves the clock ahead by its length at once, whatever
   *   other executions do, and retries take `retryIntervalMs` of real time.
   */
  readonly virtualWaits?: AdjustableClock;
  /** Replaces every Retry interval with this many ms of real time (tests). */
  readonly retryIntervalMs?: number;
  /**
   * Variables set in every function's environment after the template's, e.g.
   * `DASHSCOPE_TIMEOUT_MS` or `DASHSCOPE_SUBMIT_TIMEOUT_MS` (tests). Each function's
   * `loadConfig` validates the ones it reads.
   */
  readonly environment?: Readonly<Record<string, string>>;
  /**
   * Wraps every Task state's invocation (tests): call `invoke` to run the function, or fail the
   * invocation as Lambda would, e.g. with an error named `Lambda.Unknown` for a crash.
   */
  readonly interceptTask?: (state: string, invoke: () => Promise<unknown>) => Promise<unknown>;
  /** Overrides of the stack configuration (cdk.json context `generation`). */
  readonly generation?: Partial<StackConfig>;
  /**
   * Where synthesized templates are cached, keyed by a hash of the stack's sources and
   * `generation`. @default `$SD35_SYNTH_CACHE_DIR`, else `.local/synth-cache`
   */
  readonly synthCacheDir?: string;
  /** Where completion events go. @default dropped */
  readonly events?: EventPublisher;
  /** Webhook signing secret for local deliveries (which may go to loopback over http). */
  readonly webhookSecret?: string;
  readonly webhookTiming?: NotifyDeps['webhookTiming'];
  /** @default silentLogger */
  readonly logger?: Logger;
  readonly fetch?: typeof fetch;
}

export type ExecutionOutcome =
  | { readonly status: 'SUCCEEDED'; readonly output: ExecutionOutput }
  | { readonly status: 'FAILED'; readonly error: string; readonly cause: string };

/** The final state of a successful execution. */
export interface ExecutionOutput {
  readonly id: string;
  readonly task: TaskState;
  readonly result: PersistResult;
}

export interface RunObserver {
  /** Called after every Submit and Poll with the new task state. */
  onTaskState?(state: TaskState): void;
  /** Called whenever a Task state's function fails, before the workflow retries or catches it. */
  onTaskError?(state: string, error: unknown): void;
}

/** How one start of an execution is run: from its beginning, or redriven from a checkpoint. */
export interface StartOptions {
  /**
   * Redrive: run from this state with this input (the state's raw input, as it was entered),
   * instead of from the definition's first state with the request. @default from the start
   */
  readonly from?: Checkpoint;
  /** When the execution started (a redrive keeps the first start's). @default now */
  readonly startDate?: number;
  /**
   * Called as the execution enters each Task state, with the state's raw input; the state's
   * function is not invoked before the returned promise settles (the engine's checkpoint).
   */
  readonly onStateEntered?: (checkpoint: Checkpoint) => Promise<void>;
  /**
   * Called once the execution's Admit function has put it in the admission queue (with this
   * start's task token), or once it ended without: what a recovering engine waits for before it
   * lets the dispatcher grant again.
   */
  readonly onQueued?: () => void;
  /** Called with the end before anything else learns of it (the reconciler, the slot's release). */
  readonly onEnded?: (ended: ExecutionOutcome | AbortedOutcome) => Promise<void>;
}

export type AbortedOutcome = { readonly status: 'ABORTED' };
/** The engine stopped (its process ends) with the execution still running: nothing was recorded. */
export type SuspendedOutcome = { readonly status: 'SUSPENDED' };

export interface LocalRunner {
  /** The admission queue and the in-process dispatcher (tests ring it, or wait for it). */
  readonly admission: {
    readonly queue: AdmissionQueue;
    readonly settings: AdmissionSettings;
    readonly dispatcher: LocalDispatcher;
  };
  /** The state machine definition from the synthesized template, tokens resolved. */
  readonly definition: StateMachineDefinition;
  /** The synthesized CloudFormation template. */
  readonly template: CloudFormationTemplate;
  /**
   * The configured `defaultModel` (as the template hands it to the API and the trigger), for the
   * local front doors that validate requests before the workflow sees them.
   */
  readonly defaultModel?: Model;
  /**
   * A function's environment as the stack synthesizes it, pointed at the local parts: what its
   * spec parses (the API's and the trigger's are built from theirs too).
   */
  environment(name: LocalFunctionName): Record<string, string | undefined>;
  /** Starts one execution named `id` with the request as input; `abort()` stops it (ABORTED). */
  start(id: string, request: unknown, observer?: RunObserver, options?: StartOptions): RunningExecution;
  /** Runs one execution named `id` with the request as input, to its end. */
  run(id: string, request: unknown, observer?: RunObserver): Promise<ExecutionOutcome>;
  /**
   * Aborts every execution of this runner that has not ended yet and settles once each has
   * (a test's `afterEach` calls it, so nothing a test started outlives it). Never throws.
   */
  abortAll(): Promise<void>;
  /**
   * Stops every execution of this runner without ending it: no status change, no release, no
   * record of an end (the process is about to exit; a new engine redrives them). Never throws.
   */
  suspendAll(): Promise<void>;
  /**
   * Plays the status change of an execution that ended without this runner running it to its end
   * (a recovering engine): the reconciler records it (and announces a stop, as for any ABORTED
   * execution) and its slot is released, as when an execution of this runner ends.
   */
  recordEnd(id: string, startDate: number, request: unknown, end: Omit<StatusChange, 'input'>): Promise<void>;
}

export interface RunningExecution {
  /** Settles once the execution ended and its status-change event was handled. */
  readonly outcome: Promise<ExecutionOutcome | AbortedOutcome | SuspendedOutcome>;
  /** Stops the execution (ABORTED), with the error and cause StopExecution would record. */
  abort(reason?: { error: string; cause: string }): void;
  /** Stops running it here without ending it (see {@link LocalRunner.suspendAll}). */
  suspend(): void;
}

/**
 * Synthesizes the CDK app (with the context from cdk.json, as `cdk synth` does; in a child process,
 * cached under `synthCacheDir` until the stack's sources or `generation` change), takes the state
 * machine definition from the template, and runs it with aws-local-stepfunctions.
 * Each Lambda Task runs the same handler code as on AWS, in-process, configured from the very
 * environment variables the template gives that function plus the local endpoints.
 *
 * Its parts: the synthesized stack and the functions' environments (`runner-stack.ts`), time
 * (`runner-time.ts`), admission and the dispatcher (`runner-admission.ts`), the functions
 * (`runner-functions.ts`), the status changes played to the reconciler (`status-changes.ts`), the
 * state machines and their redrives (`state-machines.ts`), each Task state's invocation
 * (`task-states.ts`) and each execution's start, end, abort and suspension (`execution-run.ts`).
 */
export function createLocalRunner(options: LocalRunnerOptions): LocalRunner {
  const stack = localStack(options);
  const { definition, template, environment } = stack;
  const time = runnerTime(options);
  const index: GenerationIndex | undefined = options.index
    ? createDynamoGenerationIndex(options.index.client, options.index.table)
    : undefined;
  const batches = options.index
    ? createDynamoBatchIndex(options.index.client, options.index.table)
    : undefined;
  const logger = options.logger ?? silentLogger;
  const { queue, settings, dispatcher, tokens, admission } = localAdmission(options, stack, {
    time,
    index,
    logger,
  });
  const functions = localFunctions(options, stack, { time, logger, index, batches, admission });
  const statusChanged = statusChanges(functions.reconcile, time.clock, logger);
  const parts = {
    stackName: stack.stackName,
    definition,
    machines: workflowMachines(definition),
    handlers: functions.handlers,
    time,
    intercept: options.interceptTask,
    tokens,
    admission,
    dispatcher,
    statusChanged,
    logger,
  };
  // The executions that have not settled yet, for abortAll and suspendAll.
  const running = new RunningExecutions();

  return {
    admission: { queue, settings, dispatcher },
    definition,
    template,
    defaultModel: triggerSpec.parse(environment('trigger')).DEFAULT_MODEL,
    environment,
    start: (id, request, observer = {}, startOptions = {}) =>
      running.track(startExecution(parts, id, request, observer, startOptions)),
    suspendAll: () => running.suspendAll(),
    async recordEnd(id, startDate, request, end) {
      await statusChanged(id, startDate, { ...end, input: JSON.stringify(request) });
      await releaseSlot(admission, id, { logger });
    },
    abortAll: () => running.abortAll(),
    async run(id, request, observer) {
      const outcome = await this.start(id, request, observer).outcome;
      if (outcome.status === 'ABORTED' || outcome.status === 'SUSPENDED')
        throw new Error(`Execution ${id} was ${outcome.status === 'ABORTED' ? 'aborted' : 'suspended'}`);
      return outcome;
    },
  };
}
