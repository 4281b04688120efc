import { ArnFormat, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { LogGroup } from 'aws-cdk-lib/aws-logs';
import {
  Chain,
  Choice,
  Condition,
  DefinitionBody,
  Fail,
  IntegrationPattern,
  JsonPath,
  LogLevel,
  Pass,
  StateMachine,
  StateMachineType,
  Succeed,
  TaskInput,
  Timeout,
  Wait,
  WaitTime,
} from 'aws-cdk-lib/aws-stepfunctions';
import { LambdaInvoke } from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import type * as z from 'zod';
import { WORKFLOW_ERROR } from '../../functions/shared/errors.js';
import { ANNOUNCEMENT_ERROR } from '../../functions/shared/events.js';
import {
  contextPath,
  jsonMerge,
  jsonPath,
  type PathsFor,
  type JsonPath as Selects,
  selectFields,
} from '../../functions/shared/json-path.js';
import { STATE_NAMES } from '../../functions/shared/state-names.js';
import type {
  admitInputSchema,
  ExecutionIdentity,
  ExecutionInput,
  GenerationStatus,
  StateError,
  submitInputSchema,
  taskInputSchema,
  WorkflowState,
} from '../../functions/shared/workflow-state.js';
import type { StackConfig } from '../config.js';
import { acknowledge, nagResource } from '../nag.js';
import { announcementDeadLetters } from './dead-letter-queue.js';
import type { Functions } from './functions.js';
import {
  ADMIT_RETRIES,
  type BoundedRetry,
  NOTIFY_RETRIES,
  PERSIST_RETRIES,
  POLL_RETRIES,
  retryProps,
  SUBMIT_RETRIES,
  TASK_TIMEOUT_MARGIN_SECONDS,
  taskWorstCaseSeconds,
} from './retry-policy.js';

/**
 * The state machine's name. The dispatcher's grant (SendTaskSuccess) names it instead of
 * referencing the state machine, which depends on the functions that ring the dispatcher.
 */
export function workflowStateMachineName(scope: Construct): string {
  return `${Stack.of(scope).stackName}-generation`.slice(0, 80);
}

/** The ARN of {@link workflowStateMachineName}, built without a reference to the state machine. */
export function workflowStateMachineArn(scope: Construct): string {
  return Stack.of(scope).formatArn({
    service: 'states',
    resource: 'stateMachine',
    resourceName: workflowStateMachineName(scope),
    arnFormat: ArnFormat.COLON_RESOURCE_NAME,
  });
}

/** Seconds the Admit state waits past `maxQueueSeconds`: the dispatcher fails an expired entry first. */
const ADMIT_TIMEOUT_MARGIN_SECONDS = 600;

/** Rounding of the last Wait up to a whole second, clock skew and state transitions. */
const TRANSITIONS_SLACK_SECONDS = 60;

/**
 * An event EventBridge refused through all of Notify's own tries (`EventNotPublishedError`): Notify
 * runs again, up to 3 times, 15 s then 30 s then 60 s apart at most (full jitter), before its last
 * attempt dead-letters the event. A repeat sends no second webhook: Notify throws before it.
 */
export const NOTIFY_PUBLISH_RETRY: BoundedRetry = {
  errors: [ANNOUNCEMENT_ERROR.notPublished],
  maxAttempts: 3,
  intervalSeconds: 15,
  backoffRate: 2,
  maxDelaySeconds: 60,
};

/** The Notify states' retries: Lambda's service errors and throttles, and a refused event. */
export const NOTIFY_TASK_RETRIES: readonly BoundedRetry[] = [...NOTIFY_RETRIES, NOTIFY_PUBLISH_RETRY];

/** A Task's timeout: its function's own plus the margin for init and the invoke's round trip. */
function taskTimeoutSeconds(fn: IFunction): number {
  const timeout = (fn as { timeout?: Duration }).timeout;
  if (!timeout) throw new Error(`Function ${fn.node.id} has no timeout: the workflow's budget needs one`);
  return timeout.toSeconds() + TASK_TIMEOUT_MARGIN_SECONDS;
}

/**
 * The execution timeout: the longest path through the workflow when every Task spends every
 * retry, so the workflow's own failure path (Notify, then Failed) always runs before it. Admit's
 * failed invocations and its one wait (at most `maxQueueSeconds` and a margin) come first. Submit's
 * retries come before the deadline's clock starts; the Wait ⇄ Poll loop ends at the deadline,
 * after which one more Poll (its retries spent), Persist and a Notify may still run: Notify with
 * every retry spent, then its last attempt. Rounded up to a whole minute.
 * docs/decisions/0009-time-budget.md shows the arithmetic.
 */
export function executionTimeoutSeconds(
  deadlineSeconds: number,
  functions: Pick<Functions, 'admit' | 'submit' | 'poll' | 'persist' | 'notify'>,
  maxQueueSeconds: number,
): number {
  const worst = (fn: IFunction, retries: readonly BoundedRetry[]) =>
    taskWorstCaseSeconds(taskTimeoutSeconds(fn), retries);
  const total =
    // Admit: every failed invocation (its retries) and then the longest wait in the queue.
    worst(functions.admit, ADMIT_RETRIES) +
    maxQueueSeconds +
    ADMIT_TIMEOUT_MARGIN_SECONDS +
    worst(functions.submit, SUBMIT_RETRIES) +
    deadlineSeconds +
    worst(functions.poll, POLL_RETRIES) +
    worst(functions.persist, PERSIST_RETRIES) +
    // Notify, then its last attempt (an event still refused is dead-lettered there).
    worst(functions.notify, NOTIFY_TASK_RETRIES) +
    worst(functions.notify, NOTIFY_RETRIES) +
    TRANSITIONS_SLACK_SECONDS;
  return Math.ceil(total / 60) * 60;
}

/** The state names, {@link STATE_NAMES} (functions/shared/state-names.ts), under the name tests and benches use. */
export const STATE = STATE_NAMES;

export interface WorkflowProps {
  /**
   * The stack's configuration (infra/config.ts): here the deadline, the poll limit, the admission
   * settings, the default model, and the state machine's logging and its retention.
   */
  readonly config: StackConfig;
  /** The Lambdas each Task state invokes: Admit, Submit, Poll, Persist and Notify. */
  readonly functions: Functions;
}

/**
 * Paths into the state between states (workflowStateSchema), and into the execution input (the
 * request, which only Init reads): every path of the definition is built from these or from
 * `contextPath`, so a renamed field fails type-checking (test/infra/json-paths.test.ts checks the
 * synthesized definition against the schemas too).
 */
const state = jsonPath<WorkflowState>();
const input = jsonPath<ExecutionInput>();

/**
 * The execution's identity every Lambda gets besides its part of the state: the execution ARN for
 * its logs' correlation fields (the name is the generation id, `$.id`), and its start, which the
 * generations index records as the generation's creation time.
 */
const EXECUTION: PathsFor<ExecutionIdentity> = {
  executionId: contextPath('Execution', 'Id'),
  startedAt: contextPath('Execution', 'StartTime'),
};

/** What each Lambda's payload carries: its input schema's fields and the execution's identity. */
type Payload<Input extends z.ZodType> = z.input<Input> & ExecutionIdentity;

/**
 * A Lambda payload from `selectFields`' `k.$` fields and static ones, each path handed to CDK as a
 * JsonPath token (rendered back as `k.$`) so that CDK sees what the payload reads: Admit's
 * `.waitForTaskToken` requires it to see the task token.
 */
function payloadOf(fields: Readonly<Record<string, unknown>>): TaskInput {
  return TaskInput.fromObject(
    Object.fromEntries(
      Object.entries(fields).map(([key, value]) =>
        key.endsWith('.$') && typeof value === 'string'
          ? [key.slice(0, -'.$'.length), JsonPath.stringAt(value)]
          : [key, value],
      ),
    ),
  );
}

/** The Choice rules' comparisons, typed by the value each path selects. */
const taskStatusIs = (status: GenerationStatus) => Condition.stringEquals(state('task', 'status'), status);
const isTrue = (path: Selects<boolean>) => Condition.booleanEquals(path, true);
const atLeast = (path: Selects<number>, value: number) => Condition.numberGreaterThanEquals(path, value);
const secondsAt = (path: Selects<number>) => WaitTime.secondsPath(path);

/**
 * Admit (waits in the admission queue on a task token) → Submit → Wait → Poll → Check: back to
 * Wait while queued or running; Persist on success;
 * a Fail state with a named error otherwise. JSONPath only (no JSONata, no variables), so the
 * same definition runs on AWS and in aws-local-stepfunctions.
 *
 * Standard type, X-Ray tracing, an execution timeout past the longest path (`executionTimeoutSeconds`),
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
        ...selectFields<Pick<WorkflowState, 'id' | 'request'>>()({
          id: contextPath('Execution', 'Name'),
          request: input(),
        }),
        ...(config.defaultModel
          ? ({ defaults: { model: config.defaultModel } } satisfies Pick<WorkflowState, 'defaults'>)
          : {}),
      },
    });
    // A configured default model reaches every request, however it was started (API, request file,
    // event, schedule or StartExecution): the request's own fields win. Two states because an
    // intrinsic's string literal would need `\{` escapes, which the local engine does not read.
    const start = config.defaultModel
      ? Chain.start(init).next(
          new Pass(this, STATE.applyDefaults, {
            parameters: selectFields<Pick<WorkflowState, 'id' | 'request'>>()({
              id: state('id'),
              request: jsonMerge(state('defaults'), state('request')),
            }),
          }),
        )
      : Chain.start(init);

    // Every failure ends here, after the notifier: the error name and cause travel in $.failure
    // (a Lambda error via Catch, the workflow's own errors via the Pass states below).
    const failed = new Fail(this, STATE.failed, {
      errorPath: state('failure', 'Error'),
      causePath: state('failure', 'Cause'),
    });
    const done = new Succeed(this, STATE.done);
    // Notify announces the end (the event, then the webhook). An event EventBridge keeps refusing
    // fails it with EventNotPublishedError: retried (NOTIFY_PUBLISH_RETRY), then caught into its
    // last attempt, which puts the event in the announcements dead-letter queue instead and
    // delivers the webhook. Whatever else fails, the generation's outcome stays the same.
    const notify = (
      names: { readonly first: string; readonly last: string },
      outcome: 'succeeded' | 'failed',
      next: Fail | Succeed,
    ) => {
      const payload = (lastAttempt: boolean) =>
        payloadOf({
          outcome,
          ...(lastAttempt ? { lastAttempt: true } : {}),
          // The start time measures request → images (the SecondsToImages metric).
          ...selectFields<{ state: WorkflowState } & ExecutionIdentity>()({ state: state(), ...EXECUTION }),
        });
      const caught = { errors: ['States.ALL'], resultPath: state('notificationError') };
      const last = this.lambdaTask(names.last, functions.notify, NOTIFY_RETRIES, {
        payload: payload(true),
        resultPath: state('notification'),
      })
        .addCatch(next, caught)
        .next(next);
      return this.lambdaTask(names.first, functions.notify, NOTIFY_TASK_RETRIES, {
        payload: payload(false),
        resultPath: state('notification'),
      })
        .addCatch(last, { errors: [ANNOUNCEMENT_ERROR.notPublished], resultPath: state('notificationError') })
        .addCatch(next, caught)
        .next(next);
    };
    announcementDeadLetters(this).acceptFrom(functions.notify);
    const notifyFailed = notify(
      { first: STATE.notifyFailed, last: STATE.notifyFailedLastAttempt },
      'failed',
      failed,
    );
    const catchAll = { errors: ['States.ALL'], resultPath: state('failure') };

    // Admission: the execution waits here, on a task token, until the dispatcher grants it a slot
    // on an account (the result, $.admission), or fails it (QueueTimeExceeded). No transitions,
    // no polling, no history while it waits. The request is validated before it waits.
    const admit = new LambdaInvoke(this, STATE.admit, {
      lambdaFunction: functions.admit,
      integrationPattern: IntegrationPattern.WAIT_FOR_TASK_TOKEN,
      payload: payloadOf(
        selectFields<Payload<typeof admitInputSchema>>()({
          id: state('id'),
          request: state('request'),
          taskToken: contextPath('Task', 'Token'),
          ...EXECUTION,
        }),
      ),
      resultPath: state('admission'),
      retryOnServiceExceptions: false,
      taskTimeout: Timeout.duration(
        Duration.seconds(config.admission.maxQueueSeconds + ADMIT_TIMEOUT_MARGIN_SECONDS),
      ),
    });
    for (const retry of ADMIT_RETRIES) admit.addRetry(retryProps(retry));
    admit.addCatch(notifyFailed, catchAll);

    const submit = this.lambdaTask(STATE.submit, functions.submit, SUBMIT_RETRIES, {
      payload: payloadOf(
        selectFields<Payload<typeof submitInputSchema>>()({
          id: state('id'),
          request: state('request'),
          admission: state('admission'),
          ...EXECUTION,
        }),
      ),
      resultPath: state('task'),
    }).addCatch(notifyFailed, catchAll);

    const wait = new Wait(this, STATE.wait, { time: secondsAt(state('task', 'nextPollSeconds')) });

    const taskPayload = payloadOf(
      selectFields<Payload<typeof taskInputSchema>>()({
        id: state('id'),
        request: state('request'),
        task: state('task'),
        ...EXECUTION,
      }),
    );
    const poll = this.lambdaTask(STATE.poll, functions.poll, POLL_RETRIES, {
      payload: taskPayload,
      resultPath: state('task'),
    }).addCatch(notifyFailed, catchAll);

    const persist = this.lambdaTask(STATE.persist, functions.persist, PERSIST_RETRIES, {
      payload: taskPayload,
      resultPath: state('result'),
    }).addCatch(notifyFailed, catchAll);

    // The workflow's own failures: a Pass state writes the failure (StateError) Notify and Failed read.
    const failWith = (name: string, error: string, cause: Readonly<Record<string, string>>) => {
      const failure: Pick<StateError, 'Error'> = { Error: error };
      return new Pass(this, name, {
        parameters: { ...failure, ...cause },
        resultPath: state('failure'),
      }).next(notifyFailed);
    };
    const taskCause = selectFields<Pick<StateError, 'Cause'>>()({ Cause: state('task', 'error', 'message') });

    const check = new Choice(this, STATE.check)
      .when(
        taskStatusIs('succeeded'),
        persist.next(
          notify({ first: STATE.notifySucceeded, last: STATE.notifySucceededLastAttempt }, 'succeeded', done),
        ),
      )
      .when(
        isTrue(state('task', 'deadlineExceeded')),
        failWith(STATE.deadlineExceeded, WORKFLOW_ERROR.deadlineExceeded, taskCause),
      )
      .when(taskStatusIs('failed'), failWith(STATE.taskFailed, WORKFLOW_ERROR.taskFailed, taskCause))
      .when(taskStatusIs('canceled'), failWith(STATE.taskCanceled, WORKFLOW_ERROR.taskCanceled, taskCause))
      .when(taskStatusIs('expired'), failWith(STATE.taskExpired, WORKFLOW_ERROR.taskExpired, taskCause))
      .when(
        atLeast(state('task', 'pollCount'), config.maxPolls),
        failWith(STATE.pollLimitReached, WORKFLOW_ERROR.pollLimitExceeded, {
          Cause: `No result after ${config.maxPolls} polls`,
        } satisfies Pick<StateError, 'Cause'>),
      )
      .otherwise(wait);

    const definition = start.next(admit).next(submit).next(wait).next(poll).next(check);

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
      stateMachineName: workflowStateMachineName(this),
      stateMachineType: StateMachineType.STANDARD,
      definitionBody: DefinitionBody.fromChainable(definition),
      timeout: Duration.seconds(
        executionTimeoutSeconds(config.deadlineSeconds, functions, config.admission.maxQueueSeconds),
      ),
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

  /**
   * A Task that invokes `fn` with its state as the payload (`payloadResponseOnly`): a timeout of the
   * function's own plus {@link TASK_TIMEOUT_MARGIN_SECONDS}, and exactly the given Retry rules
   * (CDK's default retry of Lambda service errors is off: each policy says how it treats them).
   */
  private lambdaTask(
    name: string,
    fn: IFunction,
    retries: readonly BoundedRetry[],
    props: { payload: TaskInput; resultPath: string },
  ): LambdaInvoke {
    const task = new LambdaInvoke(this, name, {
      lambdaFunction: fn,
      payloadResponseOnly: true,
      retryOnServiceExceptions: false,
      taskTimeout: Timeout.duration(Duration.seconds(taskTimeoutSeconds(fn))),
      ...props,
    });
    for (const retry of retries) task.addRetry(retryProps(retry));
    return task;
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
    for (const fn of [
      functions.admit,
      functions.submit,
      functions.poll,
      functions.persist,
      functions.notify,
    ]) {
      acknowledge(
        role,
        `AwsSolutions-IAM5[Resource::${nagResource(this, fn.functionArn)}:*]`,
        `CDK's LambdaInvoke grants lambda:InvokeFunction on the ${fn.node.id} function and its versions and aliases (":*"); the workflow invokes the unqualified function, and the wildcard reaches no other function`,
      );
    }
  }
}
