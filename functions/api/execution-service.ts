import type { TaskState } from '../shared/workflow-state.js';

/** Step Functions' execution statuses (the ones a Standard workflow reports). */
export type ExecutionStatus =
  | 'RUNNING'
  | 'SUCCEEDED'
  | 'FAILED'
  | 'TIMED_OUT'
  | 'ABORTED'
  | 'PENDING_REDRIVE';

export interface ExecutionSummary {
  readonly name: string;
  readonly status: ExecutionStatus;
  readonly startDate: Date;
  readonly stopDate?: Date;
}

export interface ExecutionRecord extends ExecutionSummary {
  /** The execution input, parsed. */
  readonly input: unknown;
  /** The final state, parsed, once SUCCEEDED. */
  readonly output?: unknown;
  /** The error name and cause, once FAILED. */
  readonly error?: string;
  readonly cause?: string;
}

export interface ExecutionPage {
  readonly items: readonly ExecutionSummary[];
  /** Opaque; pass back to get the next page. Absent on the last page. */
  readonly nextToken?: string;
}

/** Thrown by {@link ExecutionService.start} when the name is taken by another input or a closed execution. */
export class ExecutionAlreadyExistsError extends Error {
  override readonly name = 'ExecutionAlreadyExistsError';
}

/** Thrown by {@link ExecutionService.list} for a page token it did not issue. */
export class InvalidPageTokenError extends Error {
  override readonly name = 'InvalidPageTokenError';
}

/**
 * The port between the HTTP API and the workflow engine: Step Functions on AWS
 * (`sfn-execution-service.ts`), the local runner on a developer's machine
 * (`local/execution-service.ts`). Executions are addressed by name (the generation id).
 */
export interface ExecutionService {
  /**
   * Starts the workflow. Like StartExecution: the same name and input while it runs is a no-op;
   * otherwise a taken name throws {@link ExecutionAlreadyExistsError}.
   */
  start(name: string, input: Record<string, unknown>): Promise<void>;
  /** The execution, or undefined when no execution has that name. */
  describe(name: string): Promise<ExecutionRecord | undefined>;
  /** The task state that the last Submit or Poll produced, if any (progress while it waits). */
  lastTaskState(name: string): Promise<TaskState | undefined>;
  /** Stops a running execution; stopping a closed one is a no-op. */
  stop(name: string, reason: { error: string; cause: string }): Promise<void>;
  /** Executions, newest first. */
  list(query: { status?: ExecutionStatus; limit: number; nextToken?: string }): Promise<ExecutionPage>;
}
