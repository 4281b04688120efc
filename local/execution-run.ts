import './polyfills.js';
import { setImmediate as nextTurn } from 'node:timers/promises';
import {
  ExecutionAbortedError,
  ExecutionError,
  type StateMachine,
  type StateMachineDefinition,
} from 'aws-local-stepfunctions';
import type { Admission } from '../functions/shared/admission.js';
import type { Logger } from '../functions/shared/logger.js';
import { releaseSlot } from '../functions/shared/slot-life.js';
import type { Checkpoint } from './execution-store.js';
import type { LocalDispatcher, LocalTaskTokens } from './local-admission.js';
import type {
  AbortedOutcome,
  ExecutionOutcome,
  ExecutionOutput,
  LocalRunnerOptions,
  RunningExecution,
  RunObserver,
  StartOptions,
  SuspendedOutcome,
} from './runner.js';
import type { RunnerTime } from './runner-time.js';
import type { WorkflowMachines } from './state-machines.js';
import { endChange, type StatusChanged } from './status-changes.js';
import { type Handler, type JsonValue, taskStateHandlers } from './task-states.js';

/** What every execution of a runner shares. */
export interface ExecutionParts {
  readonly stackName: string;
  readonly definition: StateMachineDefinition;
  readonly machines: WorkflowMachines;
  /** The Task states' functions, by logical id. */
  readonly handlers: Record<string, Handler>;
  readonly time: RunnerTime;
  readonly intercept: LocalRunnerOptions['interceptTask'];
  readonly tokens: LocalTaskTokens;
  readonly admission: Admission;
  readonly dispatcher: Pick<LocalDispatcher, 'idle'>;
  readonly statusChanged: StatusChanged;
  readonly logger: Logger;
}

/**
 * Starts one execution named `id`: from the definition's first state with the request, or
 * redriven from a checkpoint. Its end is played to the reconciler and its slot released before
 * its outcome settles; a suspended one ends nothing.
 */
export function startExecution(
  parts: ExecutionParts,
  id: string,
  request: unknown,
  observer: RunObserver,
  startOptions: StartOptions,
): RunningExecution {
  const { time, tokens, logger } = parts;
  const participant = time.join();
  const taskToken = tokens.issue(id);
  const checkpoints = checkpointsOf(startOptions.onStateEntered);
  const taskHandlers = taskStateHandlers(parts.definition, parts.handlers, {
    tokens,
    participant,
    invocationTime: time.invocationTime,
    virtualRetries: time.virtualRetries,
    intercept: parts.intercept,
    observer,
    checkpointed: checkpoints.checkpointed,
    queued: () => startOptions.onQueued?.(),
  });
  const startDate = startOptions.startDate ?? time.clock.now();
  const input = JSON.stringify(request);
  // A redriven execution was announced as RUNNING by its first start.
  const started =
    startOptions.from !== undefined
      ? Promise.resolve()
      : parts.statusChanged(id, startDate, { status: 'RUNNING', input });
  let stopReason: { error: string; cause: string } | undefined;
  let suspended = false;
  const machine = startOptions.from ? parts.machines.from(startOptions.from.state) : parts.machines.main;
  const execution = machine.run((startOptions.from?.input ?? request) as JsonValue, {
    overrides: { taskResourceLocalHandlers: taskHandlers, ...time.engineWaits(Object.keys(taskHandlers)) },
    context: {
      Execution: {
        Id: `arn:aws:states:local:000000000000:execution:${parts.stackName}:${id}`,
        Name: id,
        Input: request as never,
        StartTime: new Date(startDate).toISOString(),
      },
      // One token per execution: only the Admit state waits on one.
      Task: { Token: taskToken },
    },
  });
  checkpoints
    .follow(execution.eventLogs)
    .catch((error: unknown) =>
      logger.warn('Execution events not read', { generationId: id, reason: String(error) }),
    );
  const outcome = outcomeOf(execution.result)
    .finally(() => {
      participant?.leave();
      tokens.forget(taskToken);
    })
    .then(async (ended): Promise<ExecutionOutcome | AbortedOutcome | SuspendedOutcome> => {
      startOptions.onQueued?.();
      if (suspended) return { status: 'SUSPENDED' };
      await checkpoints.written();
      await startOptions.onEnded?.(ended);
      await started;
      await parts.statusChanged(id, startDate, endChange(ended, input, stopReason));
      // Whatever ended it, it holds no slot (Notify and the reconciler release too: idempotent).
      await releaseSlot(parts.admission, id, { logger });
      // The dispatcher runs these releases rang finish before the outcome settles: nothing of
      // this execution goes on in the background after it.
      await parts.dispatcher.idle();
      return ended;
    });
  return {
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
}

/** How the engine's run ended: its output, its error (named as the failed state named it), or a stop. */
export function outcomeOf(result: Promise<unknown>): Promise<ExecutionOutcome | AbortedOutcome> {
  return result.then(
    (output) => ({ status: 'SUCCEEDED', output: output as ExecutionOutput }) as const,
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
}

type EventLogs = ReturnType<StateMachine['run']>['eventLogs'];

/**
 * One execution's checkpoints: each Task and Wait state it enters is handed to `onStateEntered`
 * in order, and a Task's function waits for the write of its entry (`checkpointed`).
 */
export function checkpointsOf(onStateEntered: StartOptions['onStateEntered']) {
  let entered: Promise<void> = Promise.resolve();
  return {
    checkpointed: onStateEntered
      ? async () => {
          // The engine dispatches StateEntered just before it runs the state; one turn of the
          // event loop lets `follow` take it.
          await nextTurn();
          await entered;
        }
      : undefined,
    /**
     * Reads the execution's events to their end: the engine keeps every event of an execution
     * until someone reads it (or a finished execution's whole history stays in memory).
     */
    async follow(events: EventLogs): Promise<void> {
      for await (const event of events) {
        if (event.type !== 'StateEntered' || event.index !== undefined) continue;
        // Task states (whose function waits for it) and Wait states (a redrive waits again
        // rather than run the Task before the wait once more).
        const kind = event.state.type;
        if (!onStateEntered || (kind !== 'Task' && kind !== 'Wait')) continue;
        const checkpoint: Checkpoint = { state: event.state.name, input: event.state.input };
        const previous = entered;
        entered = previous.then(() => onStateEntered(checkpoint));
      }
    },
    /** Settles once every checkpoint taken so far was handed over (a failed one too). */
    written: () => entered.catch(() => {}),
  };
}

/** The executions of a runner that have not settled yet. */
export class RunningExecutions {
  readonly #running = new Set<RunningExecution>();

  /** Keeps `handle` until its outcome settles. */
  track(handle: RunningExecution): RunningExecution {
    this.#running.add(handle);
    const settled = () => this.#running.delete(handle);
    handle.outcome.then(settled, settled);
    return handle;
  }

  /** Aborts every one and settles once each has. Never throws. */
  async abortAll(): Promise<void> {
    const leftovers = [...this.#running];
    for (const leftover of leftovers) leftover.abort();
    await Promise.allSettled(leftovers.map((leftover) => leftover.outcome));
  }

  /** Suspends every one and settles once each has. Never throws. */
  async suspendAll(): Promise<void> {
    const leftovers = [...this.#running];
    for (const leftover of leftovers) leftover.suspend();
    await Promise.allSettled(leftovers.map((leftover) => leftover.outcome));
  }
}
