import { Duration } from 'aws-cdk-lib';
import {
  Choice,
  Condition,
  DefinitionBody,
  Fail,
  JitterType,
  Pass,
  StateMachine,
  StateMachineType,
  Succeed,
  TaskInput,
  Wait,
  WaitTime,
} from 'aws-cdk-lib/aws-stepfunctions';
import { LambdaInvoke } from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { RETRYABLE_ERROR_NAMES, WORKFLOW_ERROR } from '../../functions/shared/errors.js';
import { STATE_NAMES } from '../../functions/shared/state-names.js';
import { PERSIST_ALLOWANCE_SECONDS, type StackConfig } from '../config.js';
import type { Functions } from './functions.js';

/** State names: the local runner, the API and the tests address states by these. */
export const STATE = STATE_NAMES;

/** Errors on which the ambiguous submit is retried once at most (see ARCHITECTURE.md). */
const SUBMIT_AMBIGUOUS_ERRORS = ['DashScopeTimeoutError'];
/** DashScope's 429: it created no task and asks us to slow down. */
const SUBMIT_THROTTLED_ERRORS = ['DashScopeThrottledError'];
/** Errors after which DashScope certainly created no task: safe to submit again. */
const SUBMIT_RETRYABLE_ERRORS = RETRYABLE_ERROR_NAMES.filter(
  (name) => name.startsWith('DashScope') && !SUBMIT_AMBIGUOUS_ERRORS.includes(name),
);

export interface WorkflowProps {
  readonly config: StackConfig;
  readonly functions: Functions;
}

/**
 * Submit → Wait → Poll → Check: back to Wait while queued or running; Persist on success;
 * a Fail state with a named error otherwise. JSONPath only (no JSONata, no variables), so the
 * same definition runs on AWS and in aws-local-stepfunctions.
 */
export class Workflow extends Construct {
  readonly stateMachine: StateMachine;

  constructor(scope: Construct, id: string, props: WorkflowProps) {
    super(scope, id);
    const { config, functions } = props;

    const init = new Pass(this, STATE.init, {
      comment: 'The execution input is the request; the execution name is the generation id.',
      parameters: { 'id.$': '$$.Execution.Name', 'request.$': '$' },
    });

    // Every failure ends here, after the notifier: the error name and cause travel in $.failure
    // (a Lambda error via Catch, the workflow's own errors via the Pass states below).
    const failed = new Fail(this, STATE.failed, {
      errorPath: '$.failure.Error',
      causePath: '$.failure.Cause',
    });
    const done = new Succeed(this, STATE.done);
    const notify = (name: string, outcome: 'succeeded' | 'failed', next: Fail | Succeed) =>
      new LambdaInvoke(this, name, {
        lambdaFunction: functions.notify,
        payloadResponseOnly: true,
        payload: TaskInput.fromObject({ outcome, 'state.$': '$' }),
        resultPath: '$.notification',
      })
        // A notifier that fails never changes the generation's outcome.
        .addCatch(next, { errors: ['States.ALL'], resultPath: '$.notificationError' })
        .next(next);
    const notifyFailed = notify(STATE.notifyFailed, 'failed', failed);
    const catchAll = { errors: ['States.ALL'], resultPath: '$.failure' };

    const submit = new LambdaInvoke(this, STATE.submit, {
      lambdaFunction: functions.submit,
      payloadResponseOnly: true,
      resultPath: '$.task',
    })
      .addRetry({
        errors: SUBMIT_AMBIGUOUS_ERRORS,
        maxAttempts: 1,
        interval: Duration.seconds(5),
      })
      .addRetry({
        // DashScope takes 2 submits/s per account, so N executions started together need about N/2
        // seconds of retries. With 6 attempts, ~6 % of a burst of 100 failed (npm run bench:poll's
        // simulation); 20 attempts of full-jitter backoff carry bursts of several hundred. A refused
        // submit created no task, so retrying it is safe.
        errors: SUBMIT_THROTTLED_ERRORS,
        maxAttempts: 20,
        interval: Duration.seconds(2),
        backoffRate: 2,
        maxDelay: Duration.seconds(60),
        jitterStrategy: JitterType.FULL,
      })
      .addRetry({
        errors: SUBMIT_RETRYABLE_ERRORS.filter((name) => !SUBMIT_THROTTLED_ERRORS.includes(name)),
        maxAttempts: 6,
        interval: Duration.seconds(2),
        backoffRate: 2,
        maxDelay: Duration.seconds(60),
        jitterStrategy: JitterType.FULL,
      })
      .addCatch(notifyFailed, catchAll);

    const wait = new Wait(this, STATE.wait, { time: WaitTime.secondsPath('$.task.nextPollSeconds') });

    const poll = new LambdaInvoke(this, STATE.poll, {
      lambdaFunction: functions.poll,
      payloadResponseOnly: true,
      resultPath: '$.task',
    })
      .addRetry({
        errors: [...RETRYABLE_ERROR_NAMES],
        maxAttempts: 8,
        interval: Duration.seconds(2),
        backoffRate: 2,
        maxDelay: Duration.seconds(60),
        jitterStrategy: JitterType.FULL,
      })
      .addCatch(notifyFailed, catchAll);

    const persist = new LambdaInvoke(this, STATE.persist, {
      lambdaFunction: functions.persist,
      payloadResponseOnly: true,
      resultPath: '$.result',
    })
      .addRetry({
        errors: [...RETRYABLE_ERROR_NAMES],
        maxAttempts: 6,
        interval: Duration.seconds(5),
        backoffRate: 2,
        maxDelay: Duration.seconds(120),
        jitterStrategy: JitterType.FULL,
      })
      .addCatch(notifyFailed, catchAll);

    const failWith = (name: string, error: string, cause: { 'Cause.$': string } | { Cause: string }) =>
      new Pass(this, name, { parameters: { Error: error, ...cause }, resultPath: '$.failure' }).next(
        notifyFailed,
      );
    const taskCause = { 'Cause.$': '$.task.error.message' };

    const check = new Choice(this, STATE.check)
      .when(
        Condition.stringEquals('$.task.status', 'succeeded'),
        persist.next(notify(STATE.notifySucceeded, 'succeeded', done)),
      )
      .when(
        Condition.booleanEquals('$.task.deadlineExceeded', true),
        failWith('Deadline exceeded', WORKFLOW_ERROR.deadlineExceeded, taskCause),
      )
      .when(
        Condition.stringEquals('$.task.status', 'failed'),
        failWith('Task failed', WORKFLOW_ERROR.taskFailed, taskCause),
      )
      .when(
        Condition.stringEquals('$.task.status', 'canceled'),
        failWith('Task canceled', WORKFLOW_ERROR.taskCanceled, taskCause),
      )
      .when(
        Condition.stringEquals('$.task.status', 'expired'),
        failWith('Task expired', WORKFLOW_ERROR.taskExpired, taskCause),
      )
      .when(
        Condition.numberGreaterThanEquals('$.task.pollCount', config.maxPolls),
        failWith('Poll limit reached', WORKFLOW_ERROR.pollLimitExceeded, {
          Cause: `No result after ${config.maxPolls} polls`,
        }),
      )
      .otherwise(wait);

    const definition = init.next(submit).next(wait).next(poll).next(check);

    this.stateMachine = new StateMachine(this, 'StateMachine', {
      stateMachineType: StateMachineType.STANDARD,
      definitionBody: DefinitionBody.fromChainable(definition),
      timeout: Duration.seconds(config.deadlineSeconds + PERSIST_ALLOWANCE_SECONDS),
      tracingEnabled: true,
    });
  }
}
