import { defaultModelVariable, stateMachineArnVariable, tableVariable } from '../shared/config.js';
import { type ConfigOf, env, environmentSpec } from '../shared/env-spec.js';

/** The trigger starts a generation for each request-file line, "Generation Requested" event and schedule. */
export const triggerSpec = environmentSpec('trigger', {
  GENERATIONS_TABLE: tableVariable,
  STATE_MACHINE_ARN: stateMachineArnVariable,
  EVENT_BUS_NAME: env.text().default('default'),
  DEFAULT_MODEL: defaultModelVariable,
});
export type TriggerConfig = ConfigOf<typeof triggerSpec.variables>;
