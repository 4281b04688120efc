import { dashscopeKeyCheck, dashscopeVariables, tableVariable } from '../shared/config.js';
import { type ConfigOf, env, environmentSpec } from '../shared/env-spec.js';

/** Poll queries the task on its own account and records what a reader would see change. */
export const pollSpec = environmentSpec(
  'poll',
  {
    ...dashscopeVariables,
    /** Where progress is recorded. @default not recorded (the stack always sets it) */
    GENERATIONS_TABLE: tableVariable.optional(),
    /** The dispatcher of the admission queue (in the same table): slots are noted and released. */
    DISPATCHER_FUNCTION: env.text().optional(),
  },
  dashscopeKeyCheck,
);
export type PollConfig = ConfigOf<typeof pollSpec.variables>;
