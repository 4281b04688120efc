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
