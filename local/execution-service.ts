import {
  ExecutionAlreadyExistsError,
  type ExecutionRecord,
  type ExecutionService,
  type ExecutionStatus,
  InvalidPageTokenError,
} from '../functions/api/execution-service.js';
import { canonicalJson } from '../functions/shared/canonical-json.js';
import type { Clock } from '../functions/shared/clock.js';
import type { TaskState } from '../functions/shared/workflow-state.js';
import type { LocalRunner } from './runner.js';

interface LocalExecution {
  name: string;
  input: Record<string, unknown>;
  status: ExecutionStatus;
  startDate: Date;
  stopDate?: Date;
  output?: unknown;
  error?: string;
  cause?: string;
  lastTask?: TaskState;
  abort(): void;
  /** Settles when the execution ends (tests await it). */
  done: Promise<void>;
}

export interface LocalExecutionService extends ExecutionService {
  /** Resolves when the named execution has ended. */
  settled(name: string): Promise<void>;
}

/**
 * The local adapter of the execution port: executions run in-process through the local runner
 * (the synthesized state machine) and are kept in memory, with Step Functions' semantics for
 * names, statuses, stop and newest-first listing.
 */
export function createLocalExecutionService(runner: LocalRunner, clock: Clock): LocalExecutionService {
  const executions = new Map<string, LocalExecution>();

  const record = (execution: LocalExecution): ExecutionRecord => ({
    name: execution.name,
    status: execution.status,
    startDate: execution.startDate,
    stopDate: execution.stopDate,
    input: structuredClone(execution.input),
    output: execution.output,
    error: execution.error,
    cause: execution.cause,
  });

  return {
    async start(name, input) {
      const existing = executions.get(name);
      if (existing) {
        if (existing.status === 'RUNNING' && canonicalJson(existing.input) === canonicalJson(input)) return;
        throw new ExecutionAlreadyExistsError(`Execution already exists: ${name}`);
      }
      const running = runner.start(name, input, {
        onTaskState: (state) => {
          execution.lastTask = state;
        },
      });
      const execution: LocalExecution = {
        name,
        input: structuredClone(input),
        status: 'RUNNING',
        startDate: new Date(clock.now()),
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
    },

    async describe(name) {
      const execution = executions.get(name);
      return execution ? record(execution) : undefined;
    },

    async lastTaskState(name) {
      return executions.get(name)?.lastTask;
    },

    async stop(name, reason) {
      const execution = executions.get(name);
      if (execution?.status !== 'RUNNING') return;
      execution.status = 'ABORTED';
      execution.stopDate = new Date(clock.now());
      execution.error = reason.error;
      execution.cause = reason.cause;
      execution.abort();
    },

    async list({ status, limit, nextToken }) {
      const all = [...executions.values()]
        .reverse()
        .sort((a, b) => b.startDate.getTime() - a.startDate.getTime())
        .filter((execution) => !status || execution.status === status);
      const offset = nextToken === undefined ? 0 : Number(nextToken);
      if (!Number.isSafeInteger(offset) || offset < 0)
        throw new InvalidPageTokenError(`Unknown page token ${nextToken}`);
      const page = all.slice(offset, offset + limit);
      return {
        items: page.map(({ name, status: s, startDate, stopDate }) => ({
          name,
          status: s,
          startDate,
          stopDate,
        })),
        nextToken: offset + limit < all.length ? String(offset + limit) : undefined,
      };
    },

    async settled(name) {
      await executions.get(name)?.done;
    },
  };
}
