import './polyfills.js';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import type { CfnElement } from 'aws-cdk-lib';
import {
  ExecutionAbortedError,
  ExecutionError,
  StateMachine,
  type StateMachineDefinition,
} from 'aws-local-stepfunctions';
import type { EventPublisher } from '../functions/notify/events.js';
import { createNotifyHandler, notifyDeps } from '../functions/notify/handler.js';
import type { NotifyDeps } from '../functions/notify/notify.js';
import { createPersistHandler, persistDeps } from '../functions/persist/handler.js';
import { createPollHandler, pollDeps } from '../functions/poll/handler.js';
import { type AdjustableClock, type Clock, systemClock } from '../functions/shared/clock.js';
import { loadConfig } from '../functions/shared/config.js';
import { type Logger, silentLogger } from '../functions/shared/logger.js';
import { type PersistResult, type TaskState, taskStateSchema } from '../functions/shared/workflow-state.js';
import { createSubmitHandler, submitDeps } from '../functions/submit/handler.js';
import { createApp, STACK_ID } from '../infra/app.js';
import type { StackConfig } from '../infra/config.js';
import { STATE } from '../infra/constructs/workflow.js';

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
  };
  readonly s3: { readonly client: S3Client; readonly bucket: string };
  /** @default systemClock */
  readonly clock?: Clock;
  /**
   * Skip Wait states in virtual time: the Wait takes no real time and this clock (shared with
   * the emulator) jumps ahead by the wait instead.
   */
  readonly virtualWaits?: AdjustableClock;
  /** Replaces every Retry interval, in ms (tests). */
  readonly retryIntervalMs?: number;
  /** Overrides of the stack configuration (cdk.json context `generation`). */
  readonly generation?: Partial<StackConfig>;
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
}

export interface LocalRunner {
  /** The state machine definition from the synthesized template, tokens resolved. */
  readonly definition: StateMachineDefinition;
  /** The synthesized CloudFormation template. */
  readonly template: CloudFormationTemplate;
  /** Starts one execution named `id` with the request as input; `abort()` stops it (ABORTED). */
  start(id: string, request: unknown, observer?: RunObserver): RunningExecution;
  /** Runs one execution named `id` with the request as input, to its end. */
  run(id: string, request: unknown, observer?: RunObserver): Promise<ExecutionOutcome>;
}

export interface RunningExecution {
  readonly outcome: Promise<ExecutionOutcome | { readonly status: 'ABORTED' }>;
  abort(): void;
}

interface CloudFormationTemplate {
  Resources: Record<string, { Type: string; Properties?: Record<string, unknown> }>;
}

type Handler = (event: unknown) => Promise<unknown>;
type JsonValue = Parameters<StateMachine['run']>[0];
type TaskHandler = (input: JsonValue) => Promise<JsonValue>;

/**
 * Synthesizes the CDK app in-process (with the context from cdk.json, as `cdk synth` does),
 * takes the state machine definition from the template, and runs it with aws-local-stepfunctions.
 * Each Lambda Task runs the same handler code as on AWS, in-process, configured from the very
 * environment variables the template gives that function plus the local endpoints.
 */
export function createLocalRunner(options: LocalRunnerOptions): LocalRunner {
  const { template, functionIds } = synthesize(options.generation);
  const definition = stateMachineDefinition(template);
  const clock = options.clock ?? options.virtualWaits ?? systemClock;
  const runtime = { clock, logger: options.logger ?? silentLogger, fetch: options.fetch };
  const env = (logicalId: string) => functionEnvironment(template, logicalId, options);

  const handlers: Record<string, Handler> = {
    [functionIds.submit]: createSubmitHandler(
      submitDeps(loadConfig('submit', env(functionIds.submit)), runtime),
    ),
    [functionIds.poll]: createPollHandler(pollDeps(loadConfig('poll', env(functionIds.poll)), runtime)),
    [functionIds.notify]: createNotifyHandler(
      notifyDeps(
        loadConfig('notify', { ...env(functionIds.notify), WEBHOOK_SECRET: options.webhookSecret }),
        {
          logger: runtime.logger,
          s3: options.s3.client,
          events: options.events ?? { publish: async () => {} },
          webhookPolicy: { allowHttp: true, allowPrivateAddresses: true },
          webhookTiming: options.webhookTiming,
        },
      ),
    ),
    [functionIds.persist]: createPersistHandler(
      persistDeps(loadConfig('persist', env(functionIds.persist)), {
        ...runtime,
        s3: options.s3.client,
        allowHttpResults: options.dashscope.allowHttpResults,
      }),
    ),
  };
  // The engine annotates the definition it is given (e.g. QueryLanguage on each state): hand it a copy.
  const stateMachine = new StateMachine(structuredClone(definition), {
    validationOptions: { checkArn: false },
  });

  return {
    definition,
    template,
    start(id, request, observer = {}) {
      const taskHandlers = taskStateHandlers(definition, handlers, options.virtualWaits, observer);
      const retryIntervalOverrides =
        options.retryIntervalMs === undefined
          ? undefined
          : Object.fromEntries(Object.keys(taskHandlers).map((name) => [name, options.retryIntervalMs ?? 0]));
      const execution = stateMachine.run(request as JsonValue, {
        overrides: {
          taskResourceLocalHandlers: taskHandlers,
          waitTimeOverrides: options.virtualWaits ? { [STATE.wait]: 0 } : undefined,
          retryIntervalOverrides,
        },
        context: {
          Execution: {
            Id: `arn:aws:states:local:000000000000:execution:${STACK_ID}:${id}`,
            Name: id,
            Input: request as never,
            StartTime: new Date(clock.now()).toISOString(),
          },
        },
      });
      const outcome = execution.result.then(
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
      );
      return { outcome, abort: () => execution.abort() };
    },
    async run(id, request, observer) {
      const outcome = await this.start(id, request, observer).outcome;
      if (outcome.status === 'ABORTED') throw new Error(`Execution ${id} was aborted`);
      return outcome;
    },
  };
}

/** Maps each Task state to its function's handler (overrides are keyed by state name). */
function taskStateHandlers(
  definition: StateMachineDefinition,
  handlers: Record<string, Handler>,
  virtualWaits: AdjustableClock | undefined,
  observer: RunObserver,
): Record<string, TaskHandler> {
  const result: Record<string, TaskHandler> = {};
  for (const [name, state] of Object.entries(definition.States)) {
    if (state.Type !== 'Task') continue;
    const logicalId = /function:(.+)$/.exec(state.Resource)?.[1];
    const handler = logicalId ? handlers[logicalId] : undefined;
    if (!handler) throw new Error(`Task state "${name}" calls ${state.Resource}, which has no local handler`);
    result[name] = async (input) => {
      if (virtualWaits && name === STATE.poll) {
        // The Wait before this poll took no real time: move the shared clock instead.
        const waited = taskStateSchema.shape.nextPollSeconds.safeParse(
          (input as { task?: TaskState }).task?.nextPollSeconds,
        );
        if (waited.success) virtualWaits.advance(waited.data * 1000);
      }
      const output = await handler(input);
      if (name === STATE.submit || name === STATE.poll) observer.onTaskState?.(output as TaskState);
      return output as JsonValue;
    };
  }
  return result;
}

function synthesize(generation: Partial<StackConfig> | undefined) {
  const cdkJson = JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'cdk.json'), 'utf8')) as {
    context?: Record<string, unknown>;
  };
  const context = { ...cdkJson.context };
  context.generation = { ...(context.generation as object), ...generation };
  // Bundling does not change the definition; skipping it saves about 0.5 s per function.
  context['aws:cdk:bundling-stacks'] = [];
  const { app, stack } = createApp({ context });
  const assembly = app.synth();
  const template = assembly.getStackByName(stack.stackName).template as CloudFormationTemplate;
  const idOf = (construct: { node: { defaultChild?: unknown } }) =>
    stack.getLogicalId(construct.node.defaultChild as CfnElement);
  const functionIds = {
    submit: idOf(stack.functions.submit),
    poll: idOf(stack.functions.poll),
    persist: idOf(stack.functions.persist),
    notify: idOf(stack.functions.notify),
  };
  return { template, functionIds };
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
  const resolved = resolveTokens(variables ?? {}, { [bucketId]: options.s3.bucket }) as Record<
    string,
    string
  >;
  const env: Record<string, string | undefined> = {
    ...resolved,
    DASHSCOPE_BASE_URL: options.dashscope.baseUrl,
    DASHSCOPE_API_KEY: options.dashscope.apiKey,
    DASHSCOPE_API_KEY_SECRET_ID: undefined,
    WEBHOOK_SECRET_ID: undefined,
  };
  if (options.dashscope.resultHosts) env.RESULT_HOSTS = options.dashscope.resultHosts.join(',');
  return env;
}
