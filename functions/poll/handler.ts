import { systemClock } from '../shared/clock.js';
import { loadConfig, type PollConfig } from '../shared/config.js';
import { dashscopeFromConfig } from '../shared/dashscope-from-env.js';
import { createLambdaLogger } from '../shared/logger.js';
import { parseEvent } from '../shared/parse-event.js';
import type { Runtime } from '../shared/runtime.js';
import { type TaskState, taskInputSchema } from '../shared/workflow-state.js';
import { type PollDeps, pollGeneration } from './poll.js';

/** Wires the Poll dependencies from configuration and a runtime (AWS or local). */
export function pollDeps(config: PollConfig, runtime: Runtime): PollDeps {
  return {
    dashscope: dashscopeFromConfig(config, runtime.fetch),
    clock: runtime.clock,
    logger: runtime.logger,
  };
}

/** The Poll state's handler over explicit dependencies (the local runner uses this too). */
export function createPollHandler(deps: PollDeps): (event: unknown) => Promise<TaskState> {
  return (event) => pollGeneration(parseEvent(taskInputSchema, event), deps);
}

let lambdaHandler: ((event: unknown) => Promise<TaskState>) | undefined;

/** Lambda entry: dependencies are built from the environment on the first call, once per container. */
export const handler = (event: unknown): Promise<TaskState> => {
  lambdaHandler ??= createPollHandler(
    pollDeps(loadConfig('poll', process.env), { clock: systemClock, logger: createLambdaLogger('poll') }),
  );
  return lambdaHandler(event);
};
