import { ERROR_TYPE_BY_NAME, type ErrorType, upstreamErrorType, WORKFLOW_ERROR } from './errors.js';
import type { GenerationStatus, TaskState } from './workflow-state.js';

/** What a client is told about a failed generation. */
export interface FailureView {
  readonly type: ErrorType;
  readonly message: string;
  readonly upstreamCode?: string;
}

/**
 * The client-facing error of a failed execution, from its error name and cause: the workflow's
 * own Fail states take type and upstream code from the last task state; a Lambda error keeps only
 * its message (AWS wraps it as `{"errorType","errorMessage","trace"}`: the trace never leaves).
 */
export function failureView(
  name: string,
  cause: string | undefined,
  task: TaskState | undefined,
): FailureView {
  const isWorkflowError = (Object.values(WORKFLOW_ERROR) as string[]).includes(name);
  if (isWorkflowError && task?.error) {
    return { type: task.error.type, message: task.error.message, upstreamCode: task.error.code };
  }
  const message = lambdaErrorMessage(cause) ?? name;
  const failedTask = name === WORKFLOW_ERROR.taskFailed ? TASK_FAILED_CAUSE.exec(message) : null;
  if (failedTask) {
    // No task state at hand (the CLI, an execution read without its history): the cause Poll
    // wrote names DashScope's code, and the code gives the type, as Poll did.
    const [, code, upstreamMessage] = failedTask;
    return { type: upstreamErrorType({ code, message: upstreamMessage }), message, upstreamCode: code };
  }
  return {
    type: ERROR_TYPE_BY_NAME[name] ?? 'internal_error',
    message,
    upstreamCode: /HTTP \d{3} ([A-Za-z][\w.]*)/.exec(message)?.[1],
  };
}

/** The generation status an error name ends in: cancellation and expiry are their own states. */
export function statusOfError(
  name: string | undefined,
): Extract<GenerationStatus, 'failed' | 'canceled' | 'expired'> {
  const type = name ? ERROR_TYPE_BY_NAME[name] : undefined;
  if (type === 'canceled') return 'canceled';
  if (type === 'expired') return 'expired';
  return 'failed';
}

/** The cause Poll gives a FAILED task: `DashScope task failed: <code>[: <message>]`. */
const TASK_FAILED_CAUSE = /^DashScope task failed: ([A-Za-z][\w.]*)(?:: ([\s\S]*))?$/;

function lambdaErrorMessage(cause: string | undefined): string | undefined {
  if (!cause) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(cause);
  } catch {
    // Not JSON: a Fail state's cause, or the local engine's plain message.
    return cause;
  }
  const message = (parsed as { errorMessage?: unknown } | null)?.errorMessage;
  // JSON without a message (a trace, say) is never shown: the caller falls back on the name.
  return typeof message === 'string' ? message : undefined;
}
