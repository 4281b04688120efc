/**
 * The state machine's state names. The CDK workflow names its states with these, the local runner
 * addresses its overrides by them, and the API finds the last poll in an execution's history by them.
 */
export const STATE_NAMES = {
  init: 'Init',
  /** Only when the deployment configures a default model: fills it into a request that names none. */
  applyDefaults: 'Apply defaults',
  /** Waits in the admission queue (a task token) until the dispatcher grants a slot. */
  admit: 'Admit',
  submit: 'Submit',
  wait: 'Wait',
  poll: 'Poll',
  check: 'Check status',
  persist: 'Persist',
  notifySucceeded: 'Notify succeeded',
  notifyFailed: 'Notify failed',
  done: 'Done',
  failed: 'Failed',
} as const;
