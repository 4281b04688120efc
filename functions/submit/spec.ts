import {
  DEFAULT_DEADLINE_SECONDS,
  dashscopeKeyCheck,
  dashscopeVariables,
  runTimeModelVariable,
  tableVariable,
} from '../shared/config.js';
import { type ConfigOf, env, environmentSpec } from '../shared/env-spec.js';

/** Submit creates the DashScope task on the account its slot names and notes it. */
export const submitSpec = environmentSpec(
  'submit',
  {
    ...dashscopeVariables,
    /** Where the task is recorded. @default not recorded (the stack always sets it) */
    GENERATIONS_TABLE: tableVariable.optional(),
    /** The dispatcher of the admission queue (in the same table): the slot is noted. */
    DISPATCHER_FUNCTION: env.text().optional(),
    DEADLINE_SECONDS: env.int().default(DEFAULT_DEADLINE_SECONDS),
    RUN_TIME_MODEL: runTimeModelVariable,
  },
  dashscopeKeyCheck,
);
export type SubmitConfig = ConfigOf<typeof submitSpec.variables>;
