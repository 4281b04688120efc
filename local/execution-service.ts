import { canonicalJson } from '../functions/shared/canonical-json.js';
import type { Clock } from '../functions/shared/clock.js';
import {
  ExecutionAlreadyExistsError,
  type ExecutionRecord,
  type ExecutionService,
  type ExecutionStatus,
} from '../functions/shared/execution-service.js';
import type { LocalRunner, RunObserver } from './runner.js';

interface LocalExecution {
  name: string;
  input: Record<string, unknown>;
  status: ExecutionStatus;
  startDate: Date;
  stopDate?: Date;
  output?: unknown;
  error?: string;
  cause?: string;
  abort(reason: { error: string; cause: string }): void;
  /** Settles when the execution ended and its status change was reconciled (tests await it). */
  done: Promise<void>;
}

export interface LocalExecutionService extends ExecutionService {
  /** Resolves when the named execution has ended. */
  settled(name: string): Promise<void>;
}

/**
 * The local adapter of the execution port: executions run in-process through the local runner
 * (the synthesized state machine), with Step Functions' semantics for names, statuses and stop.
 * Executions live as long as this process; what outlives it is the generations index.
 */
export function createLocalExecutionService(
  runner: LocalRunner,
  clock: Clock,
  observer?: RunObserver,
): LocalExecutionService {
  const executions = new Map<string, LocalExecution>();

  return {
    async start(name, input) {
      const existing = executions.get(name);
      if (existing) {
        if (existing.status === 'RUNNING' && canonicalJson(existing.input) === canonicalJson(input)) {
          return { startDate: existing.startDate };
        }
        throw new ExecutionAlreadyExistsError(`Execution already exists: ${name}`);
      }
      const startDate = new Date(clock.now());
      const running = runner.start(name, input, observer);
      const execution: LocalExecution = {
        name,
        input: structuredClone(input),
        status: 'RUNNING',
        startDate,
        abort: running.abort,
        done: running.outcome.then((outcome) => {
          if (execution.status !== 'RUNNING') return;
          execution.stopDate = new Date(clock.now());
          if (outcome.status === 'SUCCEEDED') {
            execution.status = 'SUCCEEDED';
            execution.output = outcome.output;
          } else if (outcome.status === 'FAILED') {
            execution.status = 'FAILED';
            execution.error = outcome.error;
            execution.cause = outcome.cause;
          } else {
            execution.status = 'ABORTED';
          }
        }),
      };
      executions.set(name, execution);
      return { startDate };
    },

    async describe(name): Promise<ExecutionRecord | undefined> {
      const execution = executions.get(name);
      if (!execution) return undefined;
      const { abort: _, done: __, ...record } = execution;
      return { ...record, input: structuredClone(record.input) };
    },

    async stop(name, reason) {
      const execution = executions.get(name);
      if (execution?.status !== 'RUNNING') return;
      execution.status = 'ABORTED';
      execution.stopDate = new Date(clock.now());
      execution.error = reason.error;
      execution.cause = reason.cause;
      execution.abort(reason);
      // Like StopExecution, the stop is done when it answers; the status change follows.
      await execution.done;
    },

    async settled(name) {
      await executions.get(name)?.done;
    },
  };
}
