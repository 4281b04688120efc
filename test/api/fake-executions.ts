import { canonicalJson } from '../../functions/shared/canonical-json.js';
import type { Clock } from '../../functions/shared/clock.js';
import { WORKFLOW_ERROR } from '../../functions/shared/errors.js';
import {
  ExecutionAlreadyExistsError,
  type ExecutionRecord,
  type ExecutionService,
  type ExecutionStatus,
} from '../../functions/shared/execution-service.js';
import { failedUpdate, finalUpdateOfState, taskUpdate } from '../../functions/shared/index-updates.js';
import type { TaskState } from '../../functions/shared/workflow-state.js';
import type { MemoryGenerationIndex } from '../fakes/memory-index.js';

/** One execution as the fake keeps it; tests seed and change these freely. */
export interface FakeExecution {
  name: string;
  status: ExecutionStatus;
  input: unknown;
  startDate: Date;
  stopDate?: Date;
  output?: unknown;
  error?: string;
  cause?: string;
  /** The task the last Submit or Poll produced (what the workflow wrote to the index). */
  lastTask?: TaskState;
}

/**
 * An in-memory {@link ExecutionService} for API tests, with Step Functions' rules for names and
 * stop, and every call recorded. A seeded execution is also written to the index the way the
 * workflow's functions and the reconciler write it (the production mappings of index-updates.ts),
 * so the API is tested on records made as they are made for real.
 */
export class FakeExecutionService implements ExecutionService {
  readonly executions = new Map<string, FakeExecution>();
  readonly calls = {
    start: [] as { name: string; input: Record<string, unknown> }[],
    describe: [] as string[],
    stop: [] as { name: string; reason: { error: string; cause: string } }[],
  };
  /** When set, every method rejects with it (an outage of the workflow engine). */
  failure?: Error;

  constructor(
    private readonly clock: Clock,
    private readonly index?: MemoryGenerationIndex,
  ) {}

  /** Adds an execution; anything not given is a RUNNING execution started now with an empty input. */
  seed(execution: Partial<FakeExecution> & { name: string }): FakeExecution {
    const seeded: FakeExecution = {
      status: 'RUNNING',
      input: {},
      startDate: new Date(this.clock.now()),
      ...execution,
    };
    this.executions.set(seeded.name, seeded);
    if (this.index) this.#record(seeded, this.index);
    return seeded;
  }

  async start(name: string, input: Record<string, unknown>): Promise<{ startDate: Date }> {
    this.calls.start.push({ name, input });
    this.#failIfAsked();
    const existing = this.executions.get(name);
    if (existing) {
      if (existing.status === 'RUNNING' && canonicalJson(existing.input) === canonicalJson(input)) {
        return { startDate: existing.startDate };
      }
      throw new ExecutionAlreadyExistsError(`Execution already exists: ${name}`);
    }
    const startDate = new Date(this.clock.now());
    this.executions.set(name, { name, status: 'RUNNING', input: structuredClone(input), startDate });
    return { startDate };
  }

  async describe(name: string): Promise<ExecutionRecord | undefined> {
    this.calls.describe.push(name);
    this.#failIfAsked();
    const execution = this.executions.get(name);
    if (!execution) return undefined;
    const { lastTask: _, ...record } = execution;
    return structuredClone(record);
  }

  async stop(name: string, reason: { error: string; cause: string }): Promise<void> {
    this.calls.stop.push({ name, reason });
    this.#failIfAsked();
    const execution = this.executions.get(name);
    if (execution?.status !== 'RUNNING') return;
    execution.status = 'ABORTED';
    execution.stopDate = new Date(this.clock.now());
    execution.error = reason.error;
    execution.cause = reason.cause;
  }

  /**
   * Writes what the workflow would have written by the execution's state: the last task state
   * (Submit, Poll), then the end (Notify, or the reconciler for a timeout or a stop). The memory
   * index applies a write as it is called, so seeding stays synchronous.
   */
  #record(execution: FakeExecution, index: MemoryGenerationIndex): void {
    const { name: id, input: request, lastTask: task } = execution;
    const createdAt = execution.startDate.toISOString();
    const endedAt = (execution.stopDate ?? execution.startDate).toISOString();
    void index.register({ id, createdAt, source: 'api', request: request as Record<string, unknown> });
    if (task) void index.advance(taskUpdate({ id, request }, task, createdAt));
    switch (execution.status) {
      case 'SUCCEEDED': {
        const state = { ...(execution.output as object), id, request };
        void index.advance(finalUpdateOfState('succeeded', state, createdAt, endedAt));
        break;
      }
      case 'FAILED': {
        const failure = { Error: execution.error ?? 'Error', Cause: execution.cause };
        void index.advance(finalUpdateOfState('failed', { id, request, task, failure }, createdAt, endedAt));
        break;
      }
      case 'TIMED_OUT':
        void index.advance(
          failedUpdate(
            { id, request },
            { error: 'States.Timeout', cause: 'The workflow timed out' },
            createdAt,
            endedAt,
          ),
        );
        break;
      case 'ABORTED':
        void index.advance(
          failedUpdate(
            { id, request },
            { error: execution.error ?? WORKFLOW_ERROR.taskCanceled, cause: execution.cause ?? 'stopped' },
            createdAt,
            endedAt,
          ),
        );
        break;
      default:
        break;
    }
  }

  #failIfAsked(): void {
    if (this.failure) throw this.failure;
  }
}
