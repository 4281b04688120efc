import { admitDeps, createAdmitHandler } from '../functions/admit/handler.js';
import { admitSpec } from '../functions/admit/spec.js';
import { createNotifyHandler, notifyDeps } from '../functions/notify/handler.js';
import { createReconcileHandler, reconcileDeps } from '../functions/notify/reconcile-handler.js';
import { notifySpec, reconcileSpec } from '../functions/notify/spec.js';
import { createPersistHandler, persistDeps } from '../functions/persist/handler.js';
import { persistSpec } from '../functions/persist/spec.js';
import { createPollHandler, pollDeps } from '../functions/poll/handler.js';
import { pollSpec } from '../functions/poll/spec.js';
import type { Admission } from '../functions/shared/admission.js';
import type { BatchIndex } from '../functions/shared/batch.js';
import type { GenerationIndex } from '../functions/shared/generation-index.js';
import type { Logger } from '../functions/shared/logger.js';
import { LOCAL_WEBHOOK_POLICY } from '../functions/shared/webhook-url.js';
import { createSubmitHandler, submitDeps } from '../functions/submit/handler.js';
import { submitSpec } from '../functions/submit/spec.js';
import type { LocalRunnerOptions } from './runner.js';
import type { LocalStack } from './runner-stack.js';
import type { RunnerTime } from './runner-time.js';
import type { Handler } from './task-states.js';

/** The workflow's functions, in-process, each built from its deps builder as its Lambda is. */
export interface LocalFunctions {
  /** The Task states' functions, by logical id. */
  readonly handlers: Record<string, Handler>;
  /** Step Functions' status-change events → the reconciler, as the stack's rule does on AWS; none without an index. */
  readonly reconcile?: Handler;
}

/** What the functions share with the rest of the runner. */
export interface FunctionParts {
  readonly time: RunnerTime;
  readonly logger: Logger;
  readonly index?: GenerationIndex;
  /** The batches beside the index: Notify and the reconciler complete a batch whose last line ended. */
  readonly batches?: BatchIndex;
  readonly admission: Admission;
}

/**
 * Each function configured from the environment the template gives it (its spec parses it) and
 * the local parts: the clock and sleeps, the S3 client, the index and the admission queue.
 */
export function localFunctions(
  options: LocalRunnerOptions,
  stack: Pick<LocalStack, 'environment' | 'functionIds'>,
  parts: FunctionParts,
): LocalFunctions {
  const { environment, functionIds } = stack;
  const { logger, index, admission } = parts;
  const runtime = {
    clock: parts.time.clock,
    sleep: parts.time.sleep,
    logger,
    fetch: options.fetch,
    readSecret: options.dashscope.apiKeySecret?.read,
    index,
    admission,
  };
  const notifyRuntime = {
    logger,
    s3: options.s3.client,
    events: options.events ?? { publish: async () => {} },
    webhookPolicy: LOCAL_WEBHOOK_POLICY,
    webhookTiming: options.webhookTiming,
    index,
    batches: parts.batches,
    admission,
  };
  const notify = notifyDeps(notifySpec.parse(environment('notify')), notifyRuntime);
  const reconcile = index
    ? createReconcileHandler(
        reconcileDeps(reconcileSpec.parse(environment('reconcile')), {
          ...notifyRuntime,
          index,
          // The local events always include the input and output.
          executions: { describe: async () => undefined },
        }),
      )
    : undefined;
  const handlers: Record<string, Handler> = {
    [functionIds.admit]: createAdmitHandler(admitDeps(admitSpec.parse(environment('admit')), runtime)),
    [functionIds.submit]: createSubmitHandler(submitDeps(submitSpec.parse(environment('submit')), runtime)),
    [functionIds.poll]: createPollHandler(pollDeps(pollSpec.parse(environment('poll')), runtime)),
    [functionIds.notify]: createNotifyHandler(notify),
    [functionIds.persist]: createPersistHandler(
      persistDeps(persistSpec.parse(environment('persist')), {
        ...runtime,
        s3: options.s3.client,
        allowHttpResults: options.dashscope.allowHttpResults,
      }),
    ),
  };
  return { handlers, ...(reconcile ? { reconcile } : {}) };
}
