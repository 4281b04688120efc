import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { admissionFromConfig } from '../shared/aws/admission-from-env.js';
import { createDynamoGenerationIndex } from '../shared/aws/dynamodb-index.js';
import { realSleep, systemClock } from '../shared/clock.js';
import { type DashScopeAccounts, dashscopeAccounts } from '../shared/dashscope-from-env.js';
import type { GenerationIndex } from '../shared/generation-index.js';
import {
  changesWhatIsShown,
  startedAtSchema,
  taskUpdate,
  writeIndexSafely,
} from '../shared/index-updates.js';
import { lambdaEntry } from '../shared/lambda-entry.js';
import { correlationOf, withKeys } from '../shared/logger.js';
import { countThrottles, METRIC, type Metrics, noMetrics, SERVICE } from '../shared/metrics.js';
import { parseEvent } from '../shared/parse-event.js';
import type { Runtime } from '../shared/runtime.js';
import { noteStarted, releaseSlot } from '../shared/slot-life.js';
import { type TaskState, taskInputSchema } from '../shared/workflow-state.js';
import { type PollDeps, pollGeneration } from './poll.js';
import { type PollConfig, pollSpec } from './spec.js';

/** Poll's dependencies plus the metrics its handler emits. */
export interface PollHandlerDeps extends PollDeps {
  /** @default noMetrics */
  readonly metrics?: Metrics;
  /** Where a visible change (status, progress) is recorded. @default not recorded */
  readonly index?: GenerationIndex;
  /** Every configured account: each task is polled on its own. @default `dashscope` only */
  readonly accounts?: DashScopeAccounts;
  /** The task's slot is noted when it starts and released when it ends. @default no admission */
  readonly admission?: Runtime['admission'];
}

/** Wires the Poll dependencies from configuration and a runtime (AWS or local). */
export function pollDeps(config: PollConfig, runtime: Runtime): PollHandlerDeps {
  const metrics = runtime.metrics ?? noMetrics;
  const accounts = dashscopeAccounts(config, countThrottles(runtime.fetch, metrics), {
    readSecret: runtime.readSecret,
    now: () => runtime.clock.now(),
  });
  return {
    dashscope: accounts.client(),
    accounts,
    admission: runtime.admission,
    clock: runtime.clock,
    sleep: runtime.sleep ?? realSleep,
    logger: runtime.logger,
    metrics,
    index: runtime.index,
  };
}

/**
 * The Poll state's handler over explicit dependencies (the local runner uses this too). Every log
 * line carries the generation, execution and DashScope task ids; each poll counts one `Polls`.
 */
export function createPollHandler(deps: PollHandlerDeps): (event: unknown) => Promise<TaskState> {
  return async (event) => {
    const logger = withKeys(deps.logger, correlationOf(event));
    const input = parseEvent(taskInputSchema, event);
    const dashscope = deps.accounts ? deps.accounts.client(input.task.account) : deps.dashscope;
    const task = await pollGeneration(input, { ...deps, dashscope, logger });
    await noteSlot(deps, input.id, input.task, task, logger);
    const metrics = deps.metrics ?? noMetrics;
    metrics.add(METRIC.polls, 'Count', 1);
    // Only what a reader would see change costs a write: most polls change nothing.
    if (deps.index && changesWhatIsShown(input.task, task)) {
      const createdAt = startedAtSchema.parse(event).startedAt ?? task.submittedAt;
      await writeIndexSafely(deps.index, taskUpdate(input, task, createdAt), logger, () =>
        metrics.add(METRIC.indexWriteFailures, 'Count', 1),
      );
    }
    return task;
  };
}

/**
 * Keeps the generation's admission slot in step with its task: notes when it started running (the
 * dispatcher's estimates) and frees the slot once the task no longer occupies the account.
 */
async function noteSlot(
  deps: PollHandlerDeps,
  id: string,
  before: TaskState,
  after: TaskState,
  logger: PollHandlerDeps['logger'],
): Promise<void> {
  if (!deps.admission) return;
  const ended = after.deadlineExceeded || (after.status !== 'queued' && after.status !== 'running');
  if (ended) {
    await releaseSlot(deps.admission, id, { logger });
  } else if (after.status === 'running' && before.status !== 'running') {
    const startedAt = Date.parse(after.times.scheduled ?? '') || deps.clock.now();
    await noteStarted(deps.admission.queue, id, startedAt, { logger });
  }
}

/** Lambda entry: dependencies are built from the environment on the first call, once per container. */
export const handler = lambdaEntry(SERVICE.poll, ({ logger, metrics }) => {
  const config = pollSpec.parse(process.env);
  const dynamo = new DynamoDBClient({});
  const index = config.GENERATIONS_TABLE
    ? createDynamoGenerationIndex(dynamo, config.GENERATIONS_TABLE)
    : undefined;
  const admission = admissionFromConfig(dynamo, config);
  return createPollHandler(pollDeps(config, { clock: systemClock, logger, metrics, index, admission }));
});
