/** Step Functions' execution statuses (the ones a Standard workflow reports). */
export type ExecutionStatus =
  | 'RUNNING'
  | 'SUCCEEDED'
  | 'FAILED'
  | 'TIMED_OUT'
  | 'ABORTED'
  | 'PENDING_REDRIVE';

export interface ExecutionRecord {
  readonly name: string;
  readonly status: ExecutionStatus;
  readonly startDate: Date;
  readonly stopDate?: Date;
  /** The execution input, parsed. */
  readonly input: unknown;
  /** The final state, parsed, once SUCCEEDED. */
  readonly output?: unknown;
  /** The error name and cause, once FAILED, TIMED_OUT or ABORTED (when the stop gave them). */
  readonly error?: string;
  readonly cause?: string;
}

/** Thrown by {@link ExecutionService.start} when the name is taken by another input or a closed execution. */
export class ExecutionAlreadyExistsError extends Error {
  override readonly name = 'ExecutionAlreadyExistsError';
}

/**
 * The port between whoever starts generations (the HTTP API, the trigger) and the workflow engine:
 * Step Functions on AWS (`aws/sfn-execution-service.ts`), the local runner on a developer's machine
 * (`local/execution-service.ts`). Executions are addressed by name (the generation id). Nothing
 * reads generations through this port: the generations index answers reads.
 */
export interface ExecutionService {
  /**
   * Starts the workflow. Like StartExecution: the same name and input while it runs is a no-op
   * (answered with the running execution's start); otherwise a taken name throws
   * {@link ExecutionAlreadyExistsError}.
   */
  start(name: string, input: Record<string, unknown>): Promise<{ startDate: Date }>;
  /** The execution, or undefined when no execution has that name. */
  describe(name: string): Promise<ExecutionRecord | undefined>;
  /** Stops a running execution; stopping a closed or unknown one is a no-op. */
  stop(name: string, reason: { error: string; cause: string }): Promise<void>;
}
