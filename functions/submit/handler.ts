import { systemClock } from '../shared/clock.js';
import { loadConfig, type SubmitConfig } from '../shared/config.js';
import { dashscopeFromConfig } from '../shared/dashscope-from-env.js';
import { createLambdaLogger } from '../shared/logger.js';
import { parseEvent } from '../shared/parse-event.js';
import type { Runtime } from '../shared/runtime.js';
import { submitInputSchema, type TaskState } from '../shared/workflow-state.js';
import { type SubmitDeps, submitGeneration } from './submit.js';

/** Wires the Submit dependencies from configuration and a runtime (AWS or local). */
export function submitDeps(config: SubmitConfig, runtime: Runtime): SubmitDeps {
  return {
    dashscope: dashscopeFromConfig(config, runtime.fetch),
    clock: runtime.clock,
    logger: runtime.logger,
    deadlineSeconds: config.DEADLINE_SECONDS,
    runTimeModel: config.RUN_TIME_MODEL,
  };
}

/** The Submit state's handler over explicit dependencies (the local runner uses this too). */
export function createSubmitHandler(deps: SubmitDeps): (event: unknown) => Promise<TaskState> {
  return (event) => submitGeneration(parseEvent(submitInputSchema, event), deps);
}

let lambdaHandler: ((event: unknown) => Promise<TaskState>) | undefined;

/** Lambda entry: dependencies are built from the environment on the first call, once per container. */
export const handler = (event: unknown): Promise<TaskState> => {
  lambdaHandler ??= createSubmitHandler(
    submitDeps(loadConfig('submit', process.env), {
      clock: systemClock,
      logger: createLambdaLogger('submit'),
    }),
  );
  return lambdaHandler(event);
};
