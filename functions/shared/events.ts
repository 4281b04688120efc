import { createHash } from 'node:crypto';

/** The `source` of every event this project publishes. */
export const EVENT_SOURCE = 'sd35.generation';

/**
 * The `source` a "Generation Requested" event carries by default (`requestEventSources` in the
 * stack configuration): the rule matches it together with the detail type.
 */
export const DEFAULT_REQUEST_EVENT_SOURCE = 'sd35.requests';

/** Event detail types, in and out (EventBridge `detail-type`). */
export const DETAIL_TYPE = {
  requested: 'Generation Requested',
  succeeded: 'Generation Succeeded',
  failed: 'Generation Failed',
  rejected: 'Generation Request Rejected',
  /** A batch ended: every line ended, or the batch was cancelled (docs/batches.md). */
  batchCompleted: 'Batch Completed',
} as const;

/**
 * An id that is the same every time the same announcement is made again: a Notify that Step
 * Functions retries, a request file S3 delivers twice. Delivery is at least once, so receivers
 * drop what they have seen by this id (docs/events.md). `prefix` + `_` + 32 base64url characters
 * of sha256 over the parts, e.g. `deliveryId('evt', generationId, detailType)`.
 */
export function deliveryId(prefix: 'evt' | 'msg', ...parts: readonly string[]): string {
  const digest = createHash('sha256').update(parts.join('\n')).digest('base64url');
  return `${prefix}_${digest.slice(0, 32)}`;
}

/** Where completion events go: EventBridge on AWS, a local sink on a developer's machine. */
export interface EventPublisher {
  publish(detailType: string, detail: Record<string, unknown>): Promise<void>;
}

/**
 * The `detail-type` of the input a schedule's rule gives the trigger: not an event on a bus, the
 * rule's own input (the firing's event id and time, the schedule's name and request).
 */
export const SCHEDULED_DETAIL_TYPE = 'Scheduled Generation';

/**
 * The errors an announcement ("Generation Succeeded/Failed" and its webhook) can end with. The
 * workflow's Notify states retry and catch by these names (infra/constructs/workflow.ts).
 */
export const ANNOUNCEMENT_ERROR = {
  /**
   * EventBridge refused the event or did not answer, through every one of Notify's own tries:
   * the state machine runs Notify again, then its last attempt, which dead-letters the event.
   */
  notPublished: 'EventNotPublishedError',
  /**
   * The last attempt could neither publish the event nor put it in the dead-letter queue: the
   * announcement is in the error log line only (with its PutEvents entry).
   */
  lost: 'AnnouncementLostError',
} as const;

/** See {@link ANNOUNCEMENT_ERROR}.notPublished. */
export class EventNotPublishedError extends Error {
  override readonly name = 'EventNotPublishedError';
}

/** See {@link ANNOUNCEMENT_ERROR}.lost. */
export class AnnouncementLostError extends Error {
  override readonly name = 'AnnouncementLostError';
}

/**
 * An announcement EventBridge would not take, as it waits in the dead-letter queue: everything
 * needed to replay it (docs/events.md, "Runbook: dead letters"). Its `detail.eventId` is the
 * one a receiver deduplicates on, so a replay of an event that did go out after all is dropped.
 */
export interface DeadLetteredAnnouncement {
  readonly kind: 'announcement';
  readonly generationId: string;
  /** `detail.eventId` of the event. */
  readonly eventId: string;
  readonly detailType: string;
  /** The last publish error. */
  readonly reason: string;
  /** When it was dead-lettered, ISO 8601. */
  readonly at: string;
  /** The PutEvents entry, as `aws events put-events --entries '[…]'` takes it. */
  readonly entry: {
    readonly Source: string;
    readonly DetailType: string;
    /** The detail, as JSON text. */
    readonly Detail: string;
    readonly EventBusName?: string;
  };
}

/**
 * The environment variable naming the SQS queue (its URL) where Notify and the reconciler put an
 * announcement EventBridge would not take; the stack sets it on both.
 */
export const DEAD_LETTER_QUEUE_VARIABLE = 'DEAD_LETTER_QUEUE_URL';

/** Where announcements that could not be published are kept: the SQS dead-letter queue on AWS. */
export interface AnnouncementDeadLetters {
  send(announcement: DeadLetteredAnnouncement): Promise<void>;
}
