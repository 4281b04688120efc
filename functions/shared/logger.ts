import { Logger as PowertoolsLogger } from '@aws-lambda-powertools/logger';
import type { Context } from 'aws-lambda';
import * as z from 'zod';

/**
 * The logging surface domain code uses: Powertools Logger on Lambda (structured JSON with the
 * Lambda context), anything with the same four methods locally and in tests.
 * Log fields must never include the API key, prompts, result URLs or webhook URLs.
 */
export interface Logger {
  debug(message: string, extra?: Record<string, unknown>): void;
  info(message: string, extra?: Record<string, unknown>): void;
  warn(message: string, extra?: Record<string, unknown>): void;
  error(message: string, extra?: Record<string, unknown>): void;
}

/** A Lambda function's logger: also takes each invocation's Lambda context. */
export interface LambdaLogger extends Logger {
  /** Adds the invocation's request id, function name and cold start to every entry until the next call. */
  addContext(context: Context): void;
}

/** The Lambda logger of one function; log level from `POWERTOOLS_LOG_LEVEL` (default INFO). */
export function createLambdaLogger(serviceName: string): LambdaLogger {
  const logger = new PowertoolsLogger({ serviceName });
  return {
    debug: (message, extra) => (extra ? logger.debug(message, extra) : logger.debug(message)),
    info: (message, extra) => (extra ? logger.info(message, extra) : logger.info(message)),
    warn: (message, extra) => (extra ? logger.warn(message, extra) : logger.warn(message)),
    error: (message, extra) => (extra ? logger.error(message, extra) : logger.error(message)),
    addContext: (context) => logger.addContext(context),
  };
}

/** A logger that drops everything. */
export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/**
 * `logger`, adding `keys` to every entry; an entry's own fields win. Keys whose value is undefined
 * are left out. Handlers use it to put an invocation's correlation fields on every line.
 */
export function withKeys(logger: Logger, keys: object): Logger {
  const defined = Object.fromEntries(Object.entries(keys).filter(([, value]) => value !== undefined));
  if (Object.keys(defined).length === 0) return logger;
  const merge = (extra?: Record<string, unknown>) => ({ ...defined, ...extra });
  return {
    debug: (message, extra) => logger.debug(message, merge(extra)),
    info: (message, extra) => logger.info(message, merge(extra)),
    warn: (message, extra) => logger.warn(message, merge(extra)),
    error: (message, extra) => logger.error(message, merge(extra)),
  };
}

/** The fields that tie a log line to its generation, execution and DashScope task. */
export interface Correlation {
  readonly generationId?: string;
  readonly executionId?: string;
  readonly taskId?: string;
  readonly dashscopeRequestId?: string;
}

const taskIdsSchema = z
  .object({
    taskId: z.string().optional(),
    lastRequestId: z.string().optional(),
    submitRequestId: z.string().optional(),
  })
  .catch({});
const workflowEventSchema = z
  .object({
    id: z.string().optional(),
    executionId: z.string().optional(),
    task: taskIdsSchema.optional(),
    // The notifier gets the state under `state`.
    state: z
      .object({ id: z.string().optional(), task: taskIdsSchema.optional() })
      .optional()
      .catch(undefined),
  })
  .catch({});

/**
 * The correlation fields of a workflow Lambda's event, read leniently (a malformed event still
 * gets logged with what it has): the generation id (the execution name), the execution ARN, and
 * the DashScope task and latest request ids once Submit has run. Never the request itself.
 */
export function correlationOf(event: unknown): Correlation {
  const parsed = workflowEventSchema.parse(event ?? {});
  const task = parsed.task ?? parsed.state?.task;
  return {
    generationId: parsed.id ?? parsed.state?.id,
    executionId: parsed.executionId,
    taskId: task?.taskId,
    dashscopeRequestId: task?.lastRequestId ?? task?.submitRequestId,
  };
}
