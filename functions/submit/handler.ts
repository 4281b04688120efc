import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DEFAULT_ACCOUNT } from '../shared/admission.js';
import { admissionFromConfig } from '../shared/aws/admission-from-env.js';
import { createDynamoGenerationIndex } from '../shared/aws/dynamodb-index.js';
import { systemClock } from '../shared/clock.js';
import { type DashScopeAccounts, dashscopeAccounts } from '../shared/dashscope-from-env.js';
import type { GenerationIndex } from '../shared/generation-index.js';
import { startedAtSchema, taskUpdate, writeIndexSafely } from '../shared/index-updates.js';
import { lambdaEntry } from '../shared/lambda-entry.js';
import { correlationOf, withKeys } from '../shared/logger.js';
import { countThrottles, METRIC, type Metrics, noMetrics, SERVICE } from '../shared/metrics.js';
import { parseEvent } from '../shared/parse-event.js';
import type { Runtime } from '../shared/runtime.js';
import { noteSubmitted } from '../shared/slot-life.js';
import { submitInputSchema, type TaskState } from '../shared/workflow-state.js';
import { submitAdmitted } from './adopt.js';
import { type SubmitConfig, submitSpec } from './spec.js';
import type { SubmitDeps } from './submit.js';

/** Submit's dependencies plus the metrics its handler emits. */
export interface SubmitHandlerDeps extends SubmitDeps {
  /** @default noMetrics */
  readonly metrics?: Metrics;
  /** Where the new task is recorded. @default not recorded */
  readonly index?: GenerationIndex;
  /** Every configured account: the task goes to the one its grant names. @default `dashscope` only */
  readonly accounts?: DashScopeAccounts;
  /** Notes the submit on the generation's slot. @default no admission */
  readonly admission?: Runtime['admission'];
}

/** Wires the Submit dependencies from configuration and a runtime (AWS or local). */
export function submitDeps(config: SubmitConfig, runtime: Runtime): SubmitHandlerDeps {
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
    logger: runtime.logger,
    deadlineSeconds: config.DEADLINE_SECONDS,
    runTimeModel: config.RUN_TIME_MODEL,
    metrics,
    index: runtime.index,
  };
}

/**
 * The Submit state's handler over explicit dependencies (the local runner uses this too). Every
 * log line carries the generation and execution ids; a created task counts one `Submits`.
 */
export function createSubmitHandler(deps: SubmitHandlerDeps): (event: unknown) => Promise<TaskState> {
  return async (event) => {
    const logger = withKeys(deps.logger, correlationOf(event));
    const input = parseEvent(submitInputSchema, event);
    const account = input.admission?.account ?? deps.accounts?.names[0];
    const dashscope = deps.accounts ? deps.accounts.client(account) : deps.dashscope;
    const { task: submitted, adopted } = await submitAdmitted(input, {
      ...deps,
      dashscope,
      logger,
      queue: deps.admission?.queue,
    });
    const task = account === undefined ? submitted : { ...submitted, account };
    // On our slot first, then for the account: the order is slot-life.ts's.
    await noteSubmitted(
      deps.admission?.queue,
      input.id,
      { account: account ?? DEFAULT_ACCOUNT, taskId: task.taskId },
      { clock: deps.clock, logger },
    );
    const metrics = deps.metrics ?? noMetrics;
    if (!adopted) metrics.add(METRIC.submits, 'Count', 1);
    if (deps.index) {
      const createdAt = startedAtSchema.parse(event).startedAt ?? task.submittedAt;
      await writeIndexSafely(deps.index, taskUpdate(input, task, createdAt), logger, () =>
        metrics.add(METRIC.indexWriteFailures, 'Count', 1),
      );
    }
    return task;
  };
}

/** Lambda entry: dependencies are built from the environment on the first call, once per container. */
export const handler = lambdaEntry(SERVICE.submit, ({ logger, metrics }) => {
  const config = submitSpec.parse(process.env);
  const dynamo = new DynamoDBClient({});
  const index = config.GENERATIONS_TABLE
    ? createDynamoGenerationIndex(dynamo, config.GENERATIONS_TABLE)
    : undefined;
  const admission = admissionFromConfig(dynamo, config);
  return createSubmitHandler(submitDeps(config, { clock: systemClock, logger, metrics, index, admission }));
});
