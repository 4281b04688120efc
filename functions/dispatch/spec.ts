import { admissionVariable, tableVariable } from '../shared/config.js';
import { type ConfigOf, environmentSpec } from '../shared/env-spec.js';

/** The dispatcher grants slots by the accounts' limits and the lane rules. */
export const dispatchSpec = environmentSpec('dispatch', {
  GENERATIONS_TABLE: tableVariable,
  ADMISSION: admissionVariable,
});
export type DispatchConfig = ConfigOf<typeof dispatchSpec.variables>;
