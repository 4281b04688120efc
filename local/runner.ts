import './polyfills.js';
import { AsyncLocalStorage } from 'node:async_hooks';
import path from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { S3Client } from '@aws-sdk/client-s3';
import {
  ExecutionAbortedError,
  ExecutionError,
  StateMachine,
  type StateMachineDefinition,
} from 'aws-local-stepfunctions';
import { createAdmitHandler } from '../functions/admit/handler.js';
import { createNotifyHandler, notifyDeps } from '../functions/notify/handler.js';
import { type NotifyDeps, notifyCompletion } from '../functions/notify/notify.js';
import { createReconcileHandler } from '../functions/notify/reconcile-handler.js';
import { createPersistHandler, persistDeps } from '../functions/persist/handler.js';
import { createPollHandler, pollDeps } from '../functions/poll/handler.js';
import {
  type Admission,
  type AdmissionQueue,
  type AdmissionSettings,
  releaseSlot,
} from '../functions/shared/admission.js';
import { createDynamoAdmissionQueue } from '../functions/shared/aws/dynamodb-admission.js';
import { createDynamoGenerationIndex } from '../functions/shared/aws/dynamodb-index.js';
import {
  type AdjustableClock,
  type Clock,
  realSleep,
  type Sleep,
  systemClock,
} from '../functions/shared/clock.js';
import { loadConfig } from '../functions/shared/config.js';
import type { EventPublisher } from '../functions/shared/events.js';
import type { GenerationIndex } from '../functions/shared/generation-index.js';
import { type Model, modelSchema } from '../functions/shared/generation-request.js';
import { type Logger, silentLogger } from '../functions/shared/logger.js';
import type { RunTimeModelOverrides } from '../functions/shared/run-time-estimate.js';
import type { SecretReader } from '../functions/shared/secret.js';
import { STATE_NAMES as STATE } from '../functions/shared/state-names.js';
import { LOCAL_WEBHOOK_POLICY } from '../functions/shared/webhook-url.js';
import { type PersistResult, type TaskState, taskStateSchema } from '../functions/shared/workflow-state.js';
import { createSubmitHandler, submitDeps } from '../functions/submit/handler.js';
import type { StackConfig } from '../infra/config.js';
import type { TableTemplate } from './dynamodb.js';
import type { Checkpoint } from './execution-store.js';
import { LOCAL_TASK_TOKENS, LocalDispatcher, type LocalTaskTokens } from './local-admission.js';
import { MemoryAdmissionQueue } from './memory-admission.js';
import { type CloudFormationTemplate, cachedSynthesis, SYNTH_CACHE_DIR_ENV } from './synth-cache.js';
import { type VirtualTimeParticipant, virtualTimeOf } from './virtual-time.js';

const PROJECT_ROOT = path.join(import.meta.dirname, '..');

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

/** The generations table's name in a local server. */
export const LOCAL_TABLE = 'sd35-generations';

type Handler = (event: unknown) => Promise<unknown>;
type JsonValue = Parameters<StateMachine['run']>[0];
type TaskHandler = (input: JsonValue) => Promise<JsonValue>;

/** A Retry rule of the definition, as Amazon States Language spells it. */
interface Retrier {
  readonly ErrorEquals: readonly string[];
  readonly IntervalSeconds?: number;
  readonly MaxAttempts?: number;
  readonly BackoffRate?: number;
  readonly MaxDelaySeconds?: number;
  readonly JitterStrategy?: 'FULL' | 'NONE';
}

/**
 * Synthesizes the CDK app (with the context from cdk.json, as `cdk synth` does; in a child process,
 * cached under `synthCacheDir` until the stack's sources or `generation` change), takes the state
 * machine definition from the template, and runs it with aws-local-stepfunctions.
 * Each Lambda Task runs the same handler code as on AWS, in-process, configured from the very
 * environment variables the template gives that function plus the local endpoints.
 */
export function createLocalRunner(options: LocalRunnerOptions): LocalRunner {
  const { stackName, template, functionIds } = cachedSynthesis({
    dir:
      options.synthCacheDir ??
      (process.env[SYNTH_CACHE_DIR_ENV] || path.join(PROJECT_ROOT, '.local', 'synth-cache')),
    root: PROJECT_ROOT,
    generation: options.generation,
  });
  const definition = stateMachineDefinition(template);
  const clock = options.clock ?? options.virtualWaits ?? systemClock;
  const virtualWaits = options.virtualWaits;
  // Retries sleep in virtual time too, unless the caller fixed their real interval.
  const virtualRetries = virtualWaits !== undefined && options.retryIntervalMs === undefined;
  const joinVirtualTime = (): VirtualTimeParticipant | undefined => {
    if (!virtualWaits) return undefined;
    if (virtualRetries) return virtualTimeOf(virtualWaits).join();
    return { sleep: async (ms) => virtualWaits.advance(ms), idle: (promise) => promise, leave: () => {} };
  };
  const index: GenerationIndex | undefined = options.index
    ? createDynamoGenerationIndex(options.index.client, options.index.table)
    : undefined;
  // A Lambda that sleeps within its invocation (Poll's tail polling) sleeps on its execution's
  // part in virtual time; the handlers are shared, so the invocation carries it.
  const invocationTime = new AsyncLocalStorage<VirtualTimeParticipant>();
  const sleep: Sleep = (ms) => invocationTime.getStore()?.sleep(ms) ?? realSleep(ms);
  const env = (logicalId: string) => functionEnvironment(template, logicalId, options);
  const logger = options.logger ?? silentLogger;
  // Admission: the queue in the same table as the index (in memory without one), the task tokens
  // of the executions waiting in their Admit state, and the dispatcher, run in-process.
  const queue: AdmissionQueue = options.index
    ? createDynamoAdmissionQueue(options.index.client, options.index.table)
    : new MemoryAdmissionQueue();
  const tokens = LOCAL_TASK_TOKENS;
  const settings = loadConfig('dispatch', env(functionIds.dispatch)).ADMISSION;
  const dispatcher = new LocalDispatcher({
    queue,
    resumer: tokens,
    index,
    settings,
    clock,
    logger,
    joinVirtualTime,
  });
  const admission: Admission = { queue, kick: dispatcher.kick };
  const runtime = {
    clock,
    sleep,
    logger,
    fetch: options.fetch,
    readSecret: options.dashscope.apiKeySecret?.read,
    index,
    admission,
  };
  const notify = notifyDeps(
    loadConfig('notify', { ...env(functionIds.notify), WEBHOOK_SECRET: options.webhookSecret }),
    {
      logger: runtime.logger,
      s3: options.s3.client,
      events: options.events ?? { publish: async () => {} },
      webhookPolicy: LOCAL_WEBHOOK_POLICY,
      webhookTiming: options.webhookTiming,
      index,
      admission,
    },
  );
  // Step Functions' status-change events → the reconciler, as the stack's rule does on AWS.
  const reconcile = index
    ? createReconcileHandler({
        index,
        // The local events always include the input and output.
        executions: { describe: async () => undefined },
        announce: (input) => notifyCompletion(input, notify),
        logger: runtime.logger,
        admission,
      })
    : undefined;
  const statusChanged = async (id: string, startDate: number, change: StatusChange) => {
    if (!reconcile) return;
    try {
      await reconcile({
        'detail-type': 'Step Functions Execution Status Change',
        detail: {
          name: id,
          startDate,
          stopDate: change.status === 'RUNNING' ? null : clock.now(),
          ...change,
        },
      });
    } catch (error) {
      // On AWS, EventBridge would deliver the event again; locally the next run converges.
      runtime.logger.warn('Status change not reconciled', { generationId: id, reason: String(error) });
    }
  };

  const handlers: Record<string, Handler> = {
    [functionIds.admit]: createAdmitHandler({
      admission,
      clock,
      logger,
      runTimeModel: loadConfig('admit', env(functionIds.admit)).RUN_TIME_MODEL,
    }),
    [functionIds.submit]: createSubmitHandler(
      submitDeps(loadConfig('submit', env(functionIds.submit)), runtime),
    ),
    [functionIds.poll]: createPollHandler(pollDeps(loadConfig('poll', env(functionIds.poll)), runtime)),
    [functionIds.notify]: createNotifyHandler(notify),
    [functionIds.persist]: createPersistHandler(
      persistDeps(loadConfig('persist', env(functionIds.persist)), {
        ...runtime,
        s3: options.s3.client,
        allowHttpResults: options.dashscope.allowHttpResults,
      }),
    ),
  };
  // The engine annotates the definition it is given (e.g. QueryLanguage on each state): hand it a
  // copy. It is not validated again here: compiling the ASL validator's schemas takes about 0.3 s
  // per runner, and the definition is the synthesized one, which test/infra/stack.test.ts
  // validates with the same validator (and AWS validates on deploy).
  const stateMachine = new StateMachine(structuredClone(definition), {
    validationOptions: { noValidate: true },
  });

  // Redrives start from a Task state: the same definition with another StartAt, one per state.
  const redriveMachines = new Map<string, StateMachine>();
  const machineFrom = (state: string): StateMachine => {
    if (!definition.States[state]) throw new Error(`The workflow has no state "${state}" to redrive from`);
    let machine = redriveMachines.get(state);
    if (!machine) {
      machine = new StateMachine(
        { ...structuredClone(definition), StartAt: state },
        {
          validationOptions: { noValidate: true },
        },
      );
      redriveMachines.set(state, machine);
    }
    return machine;
  };

  // The executions that have not settled yet, for abortAll.
  const running = new Set<RunningExecution>();

  return {
    admission: { queue, settings, dispatcher },
    definition,
    template,
    defaultModel: configuredDefaultModel(template),
    start(id, request, observer = {}, startOptions = {}) {
      const participant = joinVirtualTime();
      const taskToken = tokens.issue(id);
      // Each execution's checkpoints: the state's function waits for the write of its entry.
      let entered: Promise<void> = Promise.resolve();
      const checkpointed = startOptions.onStateEntered
        ? async () => {
            // The engine dispatches StateEntered just before it runs the state; one turn of the
            // event loop lets the consumer below take it.
            await nextTurn();
            await entered;
          }
        : undefined;
      const taskHandlers = taskStateHandlers(definition, handlers, {
        tokens,
        participant,
        invocationTime,
        virtualRetries,
        intercept: options.interceptTask,
        observer,
        checkpointed,
        queued: () => startOptions.onQueued?.(),
      });
      const retryIntervalMs = virtualRetries ? 0 : options.retryIntervalMs;
      const retryIntervalOverrides =
        retryIntervalMs === undefined
          ? undefined
          : Object.fromEntries(Object.keys(taskHandlers).map((name) => [name, retryIntervalMs]));
      const startDate = startOptions.startDate ?? clock.now();
      const input = JSON.stringify(request);
      const redriven = startOptions.from !== undefined;
      // A redriven execution was announced as RUNNING by its first start.
      const started = redriven
        ? Promise.resolve()
        : statusChanged(id, startDate, { status: 'RUNNING', input });
      let stopReason: { error: string; cause: string } | undefined;
      let suspended = false;
      const machine = startOptions.from ? machineFrom(startOptions.from.state) : stateMachine;
      const execution = machine.run((startOptions.from?.input ?? request) as JsonValue, {
        overrides: {
          taskResourceLocalHandlers: taskHandlers,
          waitTimeOverrides: options.virtualWaits ? { [STATE.wait]: 0 } : undefined,
          retryIntervalOverrides,
        },
        context: {
          Execution: {
            Id: `arn:aws:states:local:000000000000:execution:${stackName}:${id}`,
            Name: id,
            Input: request as never,
            StartTime: new Date(startDate).toISOString(),
          },
          // One token per execution: only the Admit state waits on one.
          Task: { Token: taskToken },
        },
      });
      // The engine keeps every event of an execution until someone reads it: read them all (or
      // a finished execution's whole history stays in memory), and checkpoint each Task entered.
      void (async () => {
        for await (const event of execution.eventLogs) {
          if (event.type !== 'StateEntered' || event.index !== undefined) continue;
          // Task states (whose function waits for it) and Wait states (a redrive waits again
          // rather than run the Task before the wait once more).
          const kind = event.state.type;
          if (!startOptions.onStateEntered || (kind !== 'Task' && kind !== 'Wait')) continue;
          const checkpoint = { state: event.state.name, input: event.state.input };
          const previous = entered;
          entered = previous.then(() => startOptions.onStateEntered?.(checkpoint));
        }
      })().catch((error: unknown) =>
        logger.warn('Execution events not read', { generationId: id, reason: String(error) }),
      );
      const outcome = execution.result
        .then(
          (output) => ({ status: 'SUCCEEDED', output: output as unknown as ExecutionOutput }) as const,
          (error: unknown) => {
            if (error instanceof ExecutionAbortedError) return { status: 'ABORTED' } as const;
            if (!(error instanceof ExecutionError)) throw error;
            const failure = error.cause as { name?: string; message?: string } | undefined;
            return {
              status: 'FAILED',
              error: failure?.name ?? 'Error',
              cause: failure?.message ?? error.message,
            } as const;
          },
        )
        .finally(() => {
          participant?.leave();
          tokens.forget(taskToken);
        })
        .then(async (ended): Promise<ExecutionOutcome | AbortedOutcome | SuspendedOutcome> => {
          startOptions.onQueued?.();
          if (suspended) return { status: 'SUSPENDED' };
          await entered.catch(() => {});
          await startOptions.onEnded?.(ended);
          await started;
          await statusChanged(id, startDate, endChange(ended, input, stopReason));
          // Whatever ended it, it holds no slot (Notify and the reconciler release too: idempotent).
          await releaseSlot(admission, id, (message, fields) => logger.warn(message, fields));
          // The dispatcher runs these releases rang finish before the outcome settles: nothing of
          // this execution goes on in the background after it.
          await dispatcher.idle();
          return ended;
        });
      const handle: RunningExecution = {
        outcome,
        abort: (reason) => {
          stopReason = reason;
          execution.abort();
        },
        suspend: () => {
          suspended = true;
          execution.abort();
        },
      };
      running.add(handle);
      const settled = () => running.delete(handle);
      outcome.then(settled, settled);
      return handle;
    },
    async suspendAll() {
      const leftovers = [...running];
      for (const leftover of leftovers) leftover.suspend();
      await Promise.allSettled(leftovers.map((leftover) => leftover.outcome));
    },
    async recordEnd(id, startDate, request, end) {
      await statusChanged(id, startDate, { ...end, input: JSON.stringify(request) });
      await releaseSlot(admission, id, (message, fields) => logger.warn(message, fields));
    },
    async abortAll() {
      const leftovers = [...running];
      for (const leftover of leftovers) leftover.abort();
      await Promise.allSettled(leftovers.map((leftover) => leftover.outcome));
    },
    async run(id, request, observer) {
      const outcome = await this.start(id, request, observer).outcome;
      if (outcome.status === 'ABORTED' || outcome.status === 'SUSPENDED')
        throw new Error(`Execution ${id} was ${outcome.status === 'ABORTED' ? 'aborted' : 'suspended'}`);
      return outcome;
    },
  };
}

/** The parts of a status-change event's detail that depend on how the execution went. */
export interface StatusChange {
  readonly status: 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'ABORTED';
  readonly input: string;
  readonly output?: string | null;
  readonly error?: string | null;
  readonly cause?: string | null;
}

function endChange(
  ended: ExecutionOutcome | AbortedOutcome,
  input: string,
  stopReason: { error: string; cause: string } | undefined,
): StatusChange {
  if (ended.status === 'SUCCEEDED')
    return { status: 'SUCCEEDED', input, output: JSON.stringify(ended.output) };
  if (ended.status === 'FAILED') return { status: 'FAILED', input, error: ended.error, cause: ended.cause };
  return { status: 'ABORTED', input, error: stopReason?.error ?? null, cause: stopReason?.cause ?? null };
}

/**
 * The generations table as the synthesized stack declares it (keys, attributes, indexes), for
 * creating it in a local DynamoDB-compatible server.
 */
export function generationsTableDefinition(template: CloudFormationTemplate): TableTemplate {
  const tables = Object.values(template.Resources).filter((r) => r.Type === 'AWS::DynamoDB::Table');
  if (tables.length !== 1)
    throw new Error(`Expected one DynamoDB table in the template, found ${tables.length}`);
  return tables[0]?.Properties as unknown as TableTemplate;
}

interface TaskStateOptions {
  /** Where a `.waitForTaskToken` state (Admit) waits for its token's answer. */
  readonly tokens: LocalTaskTokens;
  /** The execution's part in virtual time; absent, waits are real. */
  readonly participant: VirtualTimeParticipant | undefined;
  /** Whether retry intervals are slept here, in virtual time (the engine's are then 0). */
  readonly virtualRetries: boolean;
  /** Carries the participant into each invocation, for the sleeps of the handler itself. */
  readonly invocationTime: AsyncLocalStorage<VirtualTimeParticipant>;
  readonly intercept: LocalRunnerOptions['interceptTask'];
  readonly observer: RunObserver;
  /** Settles once the state just entered is checkpointed. @default no checkpoints */
  readonly checkpointed?: () => Promise<void>;
  /** The callback state's function has queued the execution with its token. */
  readonly queued?: () => void;
}

/**
 * Maps each Task state of one execution to its function's handler (overrides are keyed by state
 * name). In virtual time, the Wait before a Poll and the interval before a retry are slept here,
 * on the execution's {@link VirtualTimeParticipant}: the engine's own waits are set to 0.
 */
function taskStateHandlers(
  definition: StateMachineDefinition,
  handlers: Record<string, Handler>,
  options: TaskStateOptions,
): Record<string, TaskHandler> {
  const { participant, virtualRetries, intercept, observer, invocationTime, tokens, checkpointed, queued } =
    options;
  /** The interval before the next call of a state that failed and is being retried, in ms. */
  const retrying = new Map<string, number>();
  /** Retries used per retrier since the state was entered, as the engine counts them. */
  const attempts = new Map<string, number[]>();
  const result: Record<string, TaskHandler> = {};
  for (const [name, state] of Object.entries(definition.States)) {
    if (state.Type !== 'Task') continue;
    // A callback Task (`lambda:invoke.waitForTaskToken`) names its function in its parameters,
    // gets them as its input, and ends when its token is answered, not when the function returns.
    const callback = state.Resource.endsWith('.waitForTaskToken');
    const functionArn = callback
      ? String((state as { Parameters?: { FunctionName?: unknown } }).Parameters?.FunctionName ?? '')
      : state.Resource;
    const logicalId = /function:(.+)$/.exec(functionArn)?.[1];
    const invokeFunction = logicalId ? handlers[logicalId] : undefined;
    if (!invokeFunction)
      throw new Error(`Task state "${name}" calls ${state.Resource}, which has no local handler`);
    const handler: Handler = callback
      ? async (input) => {
          const payload = (input as { Payload?: { taskToken?: unknown } }).Payload;
          const token = String(payload?.taskToken);
          const answered = tokens.wait(token);
          try {
            await invokeFunction(payload);
          } catch (error) {
            tokens.forget(token);
            throw error;
          }
          queued?.();
          return participant ? participant.idle(answered) : answered;
        }
      : invokeFunction;
    const retriers: readonly Retrier[] = (state as { Retry?: Retrier[] }).Retry ?? [];
    result[name] = async (input) => {
      await checkpointed?.();
      const retryWaitMs = retrying.get(name);
      retrying.delete(name);
      if (participant && retryWaitMs !== undefined) await participant.sleep(retryWaitMs);
      else if (participant && name === STATE.poll) {
        // The Wait before this poll took no real time: sleep it here, in virtual time.
        const waited = taskStateSchema.shape.nextPollSeconds.safeParse(
          (input as { task?: TaskState }).task?.nextPollSeconds,
        );
        if (waited.success) await participant.sleep(waited.data * 1000);
      }
      let output: unknown;
      try {
        const invoke = () =>
          participant ? invocationTime.run(participant, () => handler(input)) : handler(input);
        output = await (intercept ? intercept(name, invoke) : invoke());
      } catch (error) {
        observer.onTaskError?.(name, error);
        const used = attempts.get(name) ?? [];
        attempts.set(name, used);
        const wait = retryInterval(retriers, used, error);
        if (wait !== undefined) retrying.set(name, virtualRetries ? wait : 0);
        throw error;
      }
      attempts.delete(name);
      if (name === STATE.submit || name === STATE.poll) observer.onTaskState?.(output as TaskState);
      return output as JsonValue;
    };
  }
  return result;
}

/**
 * The interval, in ms, the engine waits before retrying a state that threw `error`, counting the
 * retry in `used`; undefined when no retrier matches or its attempts are spent. The rules of the
 * States Language, as aws-local-stepfunctions applies them: the first retrier naming the error
 * (or a wildcard) decides; interval × backoff^retries, capped, with full jitter if asked.
 */
function retryInterval(retriers: readonly Retrier[], used: number[], error: unknown): number | undefined {
  const name = error instanceof Error ? error.name : undefined;
  for (const [index, retrier] of retriers.entries()) {
    const matches = retrier.ErrorEquals.some(
      (pattern) => pattern === name || pattern === 'States.ALL' || pattern === 'States.TaskFailed',
    );
    if (!matches) continue;
    const done = used[index] ?? 0;
    if (done >= (retrier.MaxAttempts ?? 3)) return undefined;
    used[index] = done + 1;
    const seconds = Math.min(
      (retrier.IntervalSeconds ?? 1) * (retrier.BackoffRate ?? 2) ** done,
      retrier.MaxDelaySeconds ?? Number.POSITIVE_INFINITY,
    );
    return (retrier.JitterStrategy === 'FULL' ? Math.random() * seconds : seconds) * 1000;
  }
  return undefined;
}

/** The template's state machine definition with its CloudFormation tokens resolved. */
export function stateMachineDefinition(template: CloudFormationTemplate): StateMachineDefinition {
  const machines = Object.values(template.Resources).filter(
    (r) => r.Type === 'AWS::StepFunctions::StateMachine',
  );
  if (machines.length !== 1)
    throw new Error(`Expected one state machine in the template, found ${machines.length}`);
  const raw = machines[0]?.Properties?.DefinitionString;
  return JSON.parse(String(resolveTokens(raw))) as StateMachineDefinition;
}

/** Resolves the intrinsics CDK puts in a definition or an environment: Fn::Join, Fn::GetAtt, Ref. */
function resolveTokens(value: unknown, refs: Record<string, string> = {}): unknown {
  if (Array.isArray(value)) return value.map((item) => resolveTokens(item, refs));
  if (value === null || typeof value !== 'object') return value;
  const record = value as Record<string, unknown>;
  if ('Fn::Join' in record) {
    const [separator, parts] = record['Fn::Join'] as [string, unknown[]];
    return parts.map((part) => resolveTokens(part, refs)).join(separator);
  }
  if ('Fn::GetAtt' in record) {
    const [logicalId] = record['Fn::GetAtt'] as [string, string];
    return `arn:aws:lambda:local:000000000000:function:${logicalId}`;
  }
  if ('Ref' in record) {
    const ref = String(record.Ref);
    const pseudo: Record<string, string> = {
      'AWS::Partition': 'aws',
      'AWS::Region': 'local',
      'AWS::AccountId': '000000000000',
    };
    return refs[ref] ?? pseudo[ref] ?? ref;
  }
  return Object.fromEntries(Object.entries(record).map(([key, item]) => [key, resolveTokens(item, refs)]));
}

/** `DEFAULT_MODEL` as the template sets it on the functions that validate requests (the API, the trigger). */
function configuredDefaultModel(template: CloudFormationTemplate): Model | undefined {
  const models = Object.values(template.Resources)
    .filter((resource) => resource.Type === 'AWS::Lambda::Function')
    .map(
      (resource) =>
        (resource.Properties?.Environment as { Variables?: Record<string, unknown> } | undefined)?.Variables
          ?.DEFAULT_MODEL,
    )
    .filter((value) => value !== undefined);
  return models.length > 0 ? modelSchema.parse(models[0]) : undefined;
}

/** A function's environment as the template sets it, pointed at the local endpoints. */
function functionEnvironment(
  template: CloudFormationTemplate,
  logicalId: string,
  options: LocalRunnerOptions,
): Record<string, string | undefined> {
  const bucketId =
    Object.entries(template.Resources).find(([, r]) => r.Type === 'AWS::S3::Bucket')?.[0] ?? '';
  const variables = (
    template.Resources[logicalId]?.Properties?.Environment as { Variables?: unknown } | undefined
  )?.Variables;
  const tableId =
    Object.entries(template.Resources).find(([, r]) => r.Type === 'AWS::DynamoDB::Table')?.[0] ?? '';
  const resolved = resolveTokens(variables ?? {}, {
    [bucketId]: options.s3.bucket,
    [tableId]: options.index?.table ?? LOCAL_TABLE,
  }) as Record<string, string>;
  const env: Record<string, string | undefined> = {
    ...resolved,
    ...options.environment,
    DASHSCOPE_BASE_URL: options.dashscope.baseUrl,
    DASHSCOPE_API_KEY: options.dashscope.apiKey,
    DASHSCOPE_API_KEY_SECRET_ID: options.dashscope.apiKeySecret?.id,
    WEBHOOK_SECRET_ID: undefined,
  };
  if (options.dashscope.resultHosts) env.RESULT_HOSTS = options.dashscope.resultHosts.join(',');
  if (options.dashscope.runTimeModel) env.RUN_TIME_MODEL = JSON.stringify(options.dashscope.runTimeModel);
  if (options.dashscope.accounts) env.DASHSCOPE_ACCOUNTS = JSON.stringify(options.dashscope.accounts);
  else delete env.DASHSCOPE_ACCOUNTS;
  return env;
}
