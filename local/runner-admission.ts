import { dispatchSpec } from '../functions/dispatch/spec.js';
import type { Admission, AdmissionQueue, AdmissionSettings } from '../functions/shared/admission.js';
import { createDynamoAdmissionQueue } from '../functions/shared/aws/dynamodb-admission.js';
import type { GenerationIndex } from '../functions/shared/generation-index.js';
import type { Logger } from '../functions/shared/logger.js';
import { LOCAL_TASK_TOKENS, LocalDispatcher, type LocalTaskTokens } from './local-admission.js';
import { MemoryAdmissionQueue } from './memory-admission.js';
import type { LocalRunnerOptions } from './runner.js';
import type { LocalStack } from './runner-stack.js';
import type { RunnerTime } from './runner-time.js';

/** Admission in-process: the queue, Admit's task tokens and the dispatcher that answers them. */
export interface LocalAdmission {
  readonly queue: AdmissionQueue;
  readonly settings: AdmissionSettings;
  readonly dispatcher: LocalDispatcher;
  /** The task tokens of the executions waiting in their Admit state (the process's own). */
  readonly tokens: LocalTaskTokens;
  /** What the functions get: the queue and the dispatcher's doorbell. */
  readonly admission: Admission;
}

/**
 * The queue in the same table as the index (in memory without one), with the dispatcher's
 * settings as the stack gives them to the dispatch function, and the dispatcher run in-process.
 */
export function localAdmission(
  options: Pick<LocalRunnerOptions, 'index'>,
  stack: Pick<LocalStack, 'environment'>,
  parts: { readonly time: RunnerTime; readonly index?: GenerationIndex; readonly logger: Logger },
): LocalAdmission {
  const queue: AdmissionQueue = options.index
    ? createDynamoAdmissionQueue(options.index.client, options.index.table)
    : new MemoryAdmissionQueue();
  const tokens = LOCAL_TASK_TOKENS;
  const settings = dispatchSpec.parse(stack.environment('dispatch')).ADMISSION;
  const dispatcher = new LocalDispatcher({
    queue,
    resumer: tokens,
    index: parts.index,
    settings,
    clock: parts.time.clock,
    logger: parts.logger,
    joinVirtualTime: () => parts.time.join(),
  });
  return { queue, settings, dispatcher, tokens, admission: { queue, kick: dispatcher.kick } };
}
