import {
  ExecutionAlreadyExistsError,
  type ExecutionPage,
  type ExecutionRecord,
  type ExecutionService,
  type ExecutionStatus,
  InvalidPageTokenError,
} from '../../functions/api/execution-service.js';
import { canonicalJson } from '../../functions/shared/canonical-json.js';
import type { Clock } from '../../functions/shared/clock.js';
import type { TaskState } from '../../functions/shared/workflow-state.js';

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
  /** What `lastTaskState` answers (the task the last Submit or Poll produced). */
  lastTask?: TaskState;
}

/**
 * An in-memory {@link ExecutionService} for API tests: Step Functions' rules for names, stop and
 * newest-first listing, a page token that is the offset as a decimal string, and every call recorded.
 */
export class FakeExecutionService implements ExecutionService {
  readonly executions = new Map<string, FakeExecution>();
  readonly calls = {
    start: [] as { name: string; input: Record<string, unknown> }[],
    describe: [] as string[],
    lastTaskState: [] as string[],
    stop: [] as { name: string; reason: { error: string; cause: string } }[],
    list: [] as { status?: ExecutionStatus; limit: number; nextToken?: string }[],
  };
  /** When set, every method rejects with it (an outage of the workflow engine). */
  failure?: Error;

  constructor(private readonly clock: Clock) {}

  /** Adds an execution; anything not given is a RUNNING execution started now with an empty input. */
  seed(execution: Partial<FakeExecution> & { name: string }): FakeExecution {
    const seeded: FakeExecution = {
      status: 'RUNNING',
      input: {},
      startDate: new Date(this.clock.now()),
      ...execution,
    };
    this.executions.set(seeded.name, seeded);
    return seeded;
  }

  async start(name: string, input: Record<string, unknown>): Promise<void> {
    this.calls.start.push({ name, input });
    this.#failIfAsked();
    const existing = this.executions.get(name);
    if (existing) {
      if (existing.status === 'RUNNING' && canonicalJson(existing.input) === canonicalJson(input)) return;
      throw new ExecutionAlreadyExistsError(`Execution already exists: ${name}`);
    }
    this.seed({ name, input: structuredClone(input) });
  }

  async describe(name: string): Promise<ExecutionRecord | undefined> {
    this.calls.describe.push(name);
    this.#failIfAsked();
    const execution = this.executions.get(name);
    if (!execution) return undefined;
    const { lastTask: _, ...record } = execution;
    return structuredClone(record);
  }

  async lastTaskState(name: string): Promise<TaskState | undefined> {
    this.calls.lastTaskState.push(name);
    this.#failIfAsked();
    return structuredClone(this.executions.get(name)?.lastTask);
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

  async list(query: { status?: ExecutionStatus; limit: number; nextToken?: string }): Promise<ExecutionPage> {
    this.calls.list.push(query);
    this.#failIfAsked();
    const { status, limit, nextToken } = query;
    if (nextToken !== undefined && !/^\d+$/.test(nextToken)) {
      throw new InvalidPageTokenError(`Invalid page token ${nextToken}`);
    }
    const offset = nextToken === undefined ? 0 : Number(nextToken);
    // Newest first; among equal start dates, the one added last first.
    const matching = [...this.executions.values()]
      .reverse()
      .sort((a, b) => b.startDate.getTime() - a.startDate.getTime())
      .filter((execution) => status === undefined || execution.status === status);
    const page = matching.slice(offset, offset + limit);
    return {
      items: page.map(({ name, status, startDate, stopDate }) => ({ name, status, startDate, stopDate })),
      nextToken: offset + limit < matching.length ? String(offset + limit) : undefined,
    };
  }

  #failIfAsked(): void {
    if (this.failure) throw this.failure;
  }
}
