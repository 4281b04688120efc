import { realSleep, systemClock } from '../shared/clock.js';
import { loadConfig, type PollConfig } from '../shared/config.js';
import { dashscopeFromConfig } from '../shared/dashscope-from-env.js';
import { lambdaEntry } from '../shared/lambda-entry.js';
import { correlationOf, withKeys } from '../shared/logger.js';
import { countThrottles, METRIC, type Metrics, noMetrics, SERVICE } from '../shared/metrics.js';
import { parseEvent } from '../shared/parse-event.js';
import type { Runtime } from '../shared/runtime.js';
import { type TaskState, taskInputSchema } from '../shared/workflow-state.js';
import { type PollDeps, pollGeneration } from './poll.js';

/** Poll's dependencies plus the metrics its handler emits. */
export interface PollHandlerDeps extends PollDeps {
  /** @default noMetrics */
  readonly metrics?: Metrics;
}

/** Wires the Poll dependencies from configuration and a runtime (AWS or local). */
export function pollDeps(config: PollConfig, runtime: Runtime): PollHandlerDeps {
  const metrics = runtime.metrics ?? noMetrics;
  return {
    dashscope: dashscopeFromConfig(config, countThrottles(runtime.fetch, metrics)),
    clock: runtime.clock,
    sleep: runtime.sleep ?? realSleep,
    logger: runtime.logger,
    metrics,
  };
}

/**
 * The Poll state's handler over explicit dependencies (the local runner uses this too). Every log
 * line carries the generation, execution and DashScope task ids; each poll counts one `Polls`.
 */
export function createPollHandler(deps: PollHandlerDeps): (event: unknown) => Promise<TaskState> {
  return async (event) => {
    const logger = withKeys(deps.logger, correlationOf(event));
    const task = await pollGeneration(parseEvent(taskInputSchema, event), { ...deps, logger });
    (deps.metrics ?? noMetrics).add(METRIC.polls, 'Count', 1);
    return task;
  };
}

/** Lambda entry: dependencies are built from the environment on the first call, once per container. */
export const handler = lambdaEntry(SERVICE.poll, ({ logger, metrics }) =>
  createPollHandler(pollDeps(loadConfig('poll', process.env), { clock: systemClock, logger, metrics })),
);
