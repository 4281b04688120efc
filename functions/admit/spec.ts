import { runTimeModelVariable, tableVariable } from '../shared/config.js';
import { type ConfigOf, env, environmentSpec } from '../shared/env-spec.js';

/** Admit stores the waiting generation and rings the dispatcher. */
export const admitSpec = environmentSpec('admit', {
  GENERATIONS_TABLE: tableVariable,
  DISPATCHER_FUNCTION: env.text(),
  RUN_TIME_MODEL: runTimeModelVariable,
});
export type AdmitConfig = ConfigOf<typeof admitSpec.variables>;
