/**
 * The state machine's state names, every one of them. The CDK workflow names its states with these,
 * and the local runner and engine, the tests and the benches address states by them.
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
  /**
   * Notify's last attempts: they run only after Notify failed with `EventNotPublishedError` (its
   * retries spent), and dead-letter an event EventBridge still refuses.
   */
  notifySucceededLastAttempt: 'Notify succeeded last attempt',
  notifyFailedLastAttempt: 'Notify failed last attempt',
  /** The Pass states that put the workflow's own failures in `$.failure`, on the way to Notify failed. */
  deadlineExceeded: 'Deadline exceeded',
  taskFailed: 'Task failed',
  taskCanceled: 'Task canceled',
  taskExpired: 'Task expired',
  pollLimitReached: 'Poll limit reached',
  done: 'Done',
  failed: 'Failed',
} as const;
