import { Duration, Stack } from 'aws-cdk-lib';
import type { TargetBaseProps } from 'aws-cdk-lib/aws-events-targets';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { SqsDestination } from 'aws-cdk-lib/aws-lambda-destinations';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { DEAD_LETTER_QUEUE_VARIABLE } from '../../functions/shared/events.js';
import { acknowledge } from '../nag.js';
import type { GenerationFunction } from './generation-function.js';

/** How long a dead letter is kept: SQS's longest retention, two weeks to notice and replay it. */
export const DEAD_LETTER_RETENTION = Duration.days(14);

/**
 * How hard EventBridge tries a target before the event becomes a dead letter: its own defaults
 * (185 attempts over 24 hours), stated, so a Step Functions or Lambda throttle is ridden out.
 */
export const TARGET_RETRY = { retryAttempts: 185, maxEventAge: Duration.hours(24) } as const;

/** How often Lambda retries an asynchronous invocation that failed, and for how long. */
export const ASYNC_INVOKE_RETRY = { retryAttempts: 2, maxEventAge: Duration.hours(6) } as const;

export interface DeadLetterQueueProps {
  /** What ends up here, for the queue's readers: kept with the cdk-nag acknowledgment. */
  readonly holds: string;
  /**
   * The name its alarm carries (`DeadLetters<name>`), for a queue the monitoring finds by itself
   * (every dead-letter queue of the stack is alarmed).
   * @default the construct's id
   */
  readonly alarmName?: string;
}

/**
 * Where deliveries that could not be made are kept instead of dropped: an SQS queue, encrypted
 * (SQS-managed keys, which EventBridge and Lambda may write to without a key policy), TLS only,
 * keeping each message {@link DEAD_LETTER_RETENTION}. Any EventBridge target takes it with
 * {@link targetProps}, any asynchronously invoked function with {@link catchFailuresOf}; the
 * monitoring alarms on its depth.
 */
export class DeadLetterQueue extends Construct {
  readonly queue: Queue;
  /** What ends up here (the props' `holds`). */
  readonly holds: string;
  /** What was added since ({@link catchFailuresOf}'s `what`). */
  readonly #also: string[] = [];
  /** The name its alarm carries. */
  readonly alarmName: string;

  constructor(scope: Construct, id: string, props: DeadLetterQueueProps) {
    super(scope, id);
    this.holds = props.holds;
    this.alarmName = props.alarmName ?? id;
    this.queue = new Queue(this, 'Queue', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: DEAD_LETTER_RETENTION,
    });
    acknowledge(
      this.queue,
      'AwsSolutions-SQS3',
      `This queue is itself a dead-letter queue (${props.holds}); a queue for its own failures would have nothing to catch: nothing consumes it but a person following the runbook`,
    );
  }

  /** The dead-letter queue and retry policy of an EventBridge target: spread into the target's props. */
  targetProps(): Required<Pick<TargetBaseProps, 'deadLetterQueue' | 'retryAttempts' | 'maxEventAge'>> {
    return { deadLetterQueue: this.queue, ...TARGET_RETRY };
  }

  /** Everything that ends up here, for the alarm's description. */
  get contents(): string {
    return [this.holds, ...this.#also].join('; ');
  }

  /**
   * Makes `fn`'s failed asynchronous invocations (after Lambda's retries) land here, with the
   * event, instead of being dropped. `what` names them for the alarm, when `holds` does not.
   */
  catchFailuresOf(fn: IFunction, what?: string): void {
    if (what) this.#also.push(what);
    fn.configureAsyncInvoke({ onFailure: new SqsDestination(this.queue), ...ASYNC_INVOKE_RETRY });
  }

  /**
   * Lets `fn` put messages here itself (an announcement EventBridge refused): `sqs:SendMessage` on
   * this queue only, and its URL in the function's `DEAD_LETTER_QUEUE_URL`.
   */
  acceptFrom(fn: GenerationFunction): void {
    this.queue.grant(fn, 'sqs:SendMessage');
    fn.addVariables({ [DEAD_LETTER_QUEUE_VARIABLE]: this.queue.queueUrl });
  }
}

/**
 * The stack's one queue for announcements ("Generation Succeeded/Failed") that could not be
 * published: Notify's last attempt and the reconciler put them here, each a replayable PutEvents
 * entry (docs/events.md, "Runbook: dead letters"). Created by the first caller, shared after.
 */
export function announcementDeadLetters(scope: Construct): DeadLetterQueue {
  const stack = Stack.of(scope);
  const existing = stack.node.tryFindChild(ANNOUNCEMENT_DEAD_LETTERS_ID);
  if (existing instanceof DeadLetterQueue) return existing;
  return new DeadLetterQueue(stack, ANNOUNCEMENT_DEAD_LETTERS_ID, {
    holds:
      'generation announcements (Generation Succeeded/Failed events) EventBridge refused through every retry, each with its PutEvents entry for a replay',
    alarmName: 'Announcements',
  });
}

const ANNOUNCEMENT_DEAD_LETTERS_ID = 'AnnouncementDeadLetters';
