import { announcementVariables, stateMachineArnVariable, tableVariable } from '../shared/config.js';
import { type ConfigOf, env, environmentSpec } from '../shared/env-spec.js';

/** Notify records the end, frees the slot, publishes the event and delivers the webhook. It calls no DashScope. */
export const notifySpec = environmentSpec('notify', {
  ...announcementVariables,
  /** Where the end is recorded. @default not recorded (the stack always sets it) */
  GENERATIONS_TABLE: tableVariable.optional(),
  /** The dispatcher of the admission queue (in the same table): the slot is released. */
  DISPATCHER_FUNCTION: env.text().optional(),
});
export type NotifyConfig = ConfigOf<typeof notifySpec.variables>;

/** The reconciler announces executions that ended outside the workflow, as Notify does. */
export const reconcileSpec = environmentSpec('reconcile', {
  ...announcementVariables,
  GENERATIONS_TABLE: tableVariable,
  DISPATCHER_FUNCTION: env.text().optional(),
  STATE_MACHINE_ARN: stateMachineArnVariable,
});
export type ReconcileConfig = ConfigOf<typeof reconcileSpec.variables>;
