import type { AsyncLocalStorage } from 'node:async_hooks';
import type { StateMachine, StateMachineDefinition } from 'aws-local-stepfunctions';
import { STATE_NAMES as STATE } from '../functions/shared/state-names.js';
import { type TaskState, taskStateSchema } from '../functions/shared/workflow-state.js';
import type { LocalTaskTokens } from './local-admission.js';
import type { LocalRunnerOptions, RunObserver } from './runner.js';
import type { VirtualTimeParticipant } from './virtual-time.js';

/** A function's handler, as the runner invokes it. */
export type Handler = (event: unknown) => Promise<unknown>;
export type JsonValue = Parameters<StateMachine['run']>[0];
type TaskHandler = (input: JsonValue) => Promise<JsonValue>;

/** A Retry rule of the definition, as Amazon States Language spells it. */
export interface Retrier {
  readonly ErrorEquals: readonly string[];
  readonly IntervalSeconds?: number;
  readonly MaxAttempts?: number;
  readonly BackoffRate?: number;
  readonly MaxDelaySeconds?: number;
  readonly JitterStrategy?: 'FULL' | 'NONE';
}

export interface TaskStateOptions {
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
export function taskStateHandlers(
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
export function retryInterval(
  retriers: readonly Retrier[],
  used: number[],
  error: unknown,
): number | undefined {
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
