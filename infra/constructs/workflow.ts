import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { LogGroup } from 'aws-cdk-lib/aws-logs';
import {
  Chain,
  Choice,
  Condition,
  DefinitionBody,
  Fail,
  JitterType,
  LogLevel,
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
import {
  BEFORE_REQUEST_ERROR_NAMES,
  RETRYABLE_ERROR_NAMES,
  WORKFLOW_ERROR,
} from '../../functions/shared/errors.js';
import { STATE_NAMES } from '../../functions/shared/state-names.js';
import { PERSIST_ALLOWANCE_SECONDS, type StackConfig } from '../config.js';
import { acknowledge, nagResource } from '../nag.js';
import type { Functions } from './functions.js';

/** State names: the local runner, the API and the tests address states by these. */
export const STATE = STATE_NAMES;

/**
 * Errors after which a task may or may not exist at DashScope: our request got no answer, or
 * Lambda's own service failed around an invocation that may have run. One retrier for all of
 * them, retried once at most, so a lost answer costs at most one extra task (see ARCHITECTURE.md).
 * CDK's default retries of Lambda service exceptions (6 attempts) are off for Submit for this reason.
 */
const SUBMIT_AMBIGUOUS_ERRORS = [
  'DashScopeTimeoutError',
  'Lambda.ServiceException',
  'Lambda.AWSLambdaException',
  'Lambda.SdkClientException',
  'Lambda.ClientExecutionTimeoutException',
];
/** DashScope's 429: it created no task and asks us to slow down. */
const SUBMIT_THROTTLED_ERRORS = ['DashScopeThrottledError'];
/**
 * Errors after which DashScope certainly created no task: safe to submit again. A failed read of
 * the API key's secret is one: it happens before the submit is sent.
 */
const SUBMIT_RETRYABLE_ERRORS = RETRYABLE_ERROR_NAMES.filter(
  (name) =>
    (name.startsWith('DashScope') || (BEFORE_REQUEST_ERROR_NAMES as readonly string[]).includes(name)) &&
    !SUBMIT_AMBIGUOUS_ERRORS.includes(name),
);

export interface WorkflowProps {
  readonly config: StackConfig;
  readonly functions: Functions;
}

/**
 * The execution's identity every Lambda gets besides its part of the state: the execution ARN for
 * its logs' correlation fields (the name is the generation id, `$.id`), and its start, which the
 * generations index records as the generation's creation time.
 */
const EXECUTION = { 'executionId.$': '$$.Execution.Id', 'startedAt.$': '$$.Execution.StartTime' };

/**
 * Submit → Wait → Poll → Check: back to Wait while queued or running; Persist on success;
 * a Fail state with a named error otherwise. JSONPath only (no JSONata, no variables), so the
 * same definition runs on AWS and in aws-local-stepfunctions.
 *
 * Standard type, X-Ray tracing, an execution timeout of the deadline plus the Persist allowance,
 * and CloudWatch Logs at the configured level (ERROR without execution data by default: the data
 * holds the request, and prompts can be sensitive).
 */
export class Workflow extends Construct {
  readonly stateMachine: StateMachine;
  /** The state machine's log group; absent when `workflowLogging.level` is OFF. */
  readonly logGroup?: LogGroup;

  constructor(scope: Construct, id: string, props: WorkflowProps) {
    super(scope, id);
    const { config, functions } = props;

    const init = new Pass(this, STATE.init, {
      comment: 'The execution input is the request; the execution name is the generation id.',
      parameters: {
        'id.$': '$$.Execution.Name',
        'request.$': '$',
        ...(config.defaultModel ? { defaults: { model: config.defaultModel } } : {}),
      },
    });
    // A configured default model reaches every request, however it was started (API, request file,
    // event, schedule or StartExecution): the request's own fields win. Two states because an
    // intrinsic's string literal would need `\{` escapes, which the local engine does not read.
    const start = config.defaultModel
      ? Chain.start(init).next(
          new Pass(this, STATE.applyDefaults, {
            parameters: { 'id.$': '$.id', 'request.$': 'States.JsonMerge($.defaults, $.request, false)' },
          }),
        )
      : Chain.start(init);

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
        // The start time measures request → images (the SecondsToImages metric).
        payload: TaskInput.fromObject({
          outcome,
          'state.$': '$',
          ...EXECUTION,
        }),
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
      payload: TaskInput.fromObject({ 'id.$': '$.id', 'request.$': '$.request', ...EXECUTION }),
      resultPath: '$.task',
      retryOnServiceExceptions: false,
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

    const taskPayload = TaskInput.fromObject({
      'id.$': '$.id',
      'request.$': '$.request',
      'task.$': '$.task',
      ...EXECUTION,
    });
    const poll = new LambdaInvoke(this, STATE.poll, {
      lambdaFunction: functions.poll,
      payloadResponseOnly: true,
      payload: taskPayload,
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
      payload: taskPayload,
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

    const definition = start.next(submit).next(wait).next(poll).next(check);

    const logging = config.workflowLogging;
    if (logging.level !== 'OFF') {
      this.logGroup = new LogGroup(this, 'Logs', {
        // The /aws/vendedlogs/ prefix keeps the account's CloudWatch Logs resource policy small.
        logGroupName: `/aws/vendedlogs/states/${Stack.of(this).stackName}-generation`,
        retention: config.logRetentionDays,
        removalPolicy: RemovalPolicy.DESTROY,
      });
    }

    this.stateMachine = new StateMachine(this, 'StateMachine', {
      stateMachineType: StateMachineType.STANDARD,
      definitionBody: DefinitionBody.fromChainable(definition),
      timeout: Duration.seconds(config.deadlineSeconds + PERSIST_ALLOWANCE_SECONDS),
      tracingEnabled: true,
      ...(this.logGroup
        ? {
            logs: {
              destination: this.logGroup,
              level: LogLevel[logging.level],
              includeExecutionData: logging.includeExecutionData,
            },
          }
        : {}),
    });
    this.acknowledgeFindings(config, functions);
  }

  /** The cdk-nag findings this design accepts on the state machine and its role, each with its reason. */
  private acknowledgeFindings(config: StackConfig, functions: Functions): void {
    if (config.workflowLogging.level !== 'ALL') {
      acknowledge(
        this.stateMachine,
        'AwsSolutions-SF1',
        `The workflow logs at ${config.workflowLogging.level} (generation.workflowLogging): ALL would log every state transition of every poll loop, and with execution data every prompt; each execution's history keeps the full record for 90 days`,
      );
    }
    const role = this.stateMachine.role;
    acknowledge(
      role,
      'AwsSolutions-IAM5[Resource::*]',
      'X-Ray tracing (xray:PutTraceSegments, PutTelemetryRecords, GetSamplingRules, GetSamplingTargets) and CloudWatch Logs delivery (logs:CreateLogDelivery and the other log-delivery actions) have no resource-level permissions: AWS requires "*" (test/infra/production.test.ts checks that nothing else is)',
    );
    for (const fn of [functions.submit, functions.poll, functions.persist, functions.notify]) {
      acknowledge(
        role,
        `AwsSolutions-IAM5[Resource::${nagResource(this, fn.functionArn)}:*]`,
        `CDK's LambdaInvoke grants lambda:InvokeFunction on the ${fn.node.id} function and its versions and aliases (":*"); the workflow invokes the unqualified function, and the wildcard reaches no other function`,
      );
    }
  }
}
