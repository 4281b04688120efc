import * as z from 'zod';
import { describeError } from '../shared/errors.js';
import {
  type AnnouncementDeadLetters,
  AnnouncementLostError,
  DETAIL_TYPE,
  type DeadLetteredAnnouncement,
  deliveryId,
  EVENT_SOURCE,
  EventNotPublishedError,
  type EventPublisher,
} from '../shared/events.js';
import { failureView, statusOfError } from '../shared/failure.js';
import { generationRequestSchema, type WebhookEvent } from '../shared/generation-request.js';
import type { Logger } from '../shared/logger.js';
import type { ObjectStore } from '../shared/object-store.js';
import { persistResultSchema, taskStateSchema } from '../shared/workflow-state.js';
import { CALL_TIMING, type RetryTiming, withRetries, worstCaseMs } from './retry.js';
import { type DeliveryRecord, deliverWebhook, WEBHOOK_TIMING, type WebhookPolicy } from './webhook.js';

/** What the workflow's last states pass: the outcome and the whole state (parsed leniently). */
export const notifyInputSchema = z.object({
  outcome: z.enum(['succeeded', 'failed']),
  /**
   * The last attempt: the workflow's "… last attempt" states (after Notify's own retries) and the
   * reconciler. An event EventBridge still refuses is dead-lettered instead of failing the call.
   */
  lastAttempt: z.boolean().optional(),
  state: z.object({
    id: z.string(),
    request: z.unknown(),
    task: z.unknown().optional(),
    result: z.unknown().optional(),
    failure: z.object({ Error: z.string(), Cause: z.string().optional() }).optional(),
  }),
});
export type NotifyInput = z.infer<typeof notifyInputSchema>;

export interface NotifyDeps {
  readonly events: EventPublisher;
  /** Where the webhook delivery record is written (in `bucket`). */
  readonly objects: ObjectStore;
  readonly bucket: string;
  readonly logger: Logger;
  /** The webhook signing secret; without it (webhooks off), webhook_url is ignored. */
  readonly webhookSecret?: () => Promise<string>;
  readonly webhookPolicy: WebhookPolicy;
  /** Overrides of the delivery's retry timing (tests). */
  readonly webhookTiming?: { attempts?: number; firstBackoffMs?: number; timeoutMs?: number };
  /**
   * Where the last attempt puts an event EventBridge would not take: the announcements
   * dead-letter queue on AWS. @default the error log (the announcement logged whole)
   */
  readonly deadLetters?: AnnouncementDeadLetters;
  /** The bus, named in a dead-lettered event's PutEvents entry. @default none (the default bus) */
  readonly eventBusName?: string;
  /** Overrides of the publish's and the dead-letter send's tries (tests). @default CALL_TIMING */
  readonly callTiming?: Partial<RetryTiming>;
}

export interface NotifyResult {
  /** `dead-lettered`: the last attempt could not publish it and left it in the dead-letter queue. */
  readonly event: 'published' | 'dead-lettered';
  readonly webhook?: { readonly delivered: boolean; readonly attempts: number; readonly recordKey: string };
}

/**
 * The longest a last attempt takes in {@link notifyCompletion} at worst: the publish's tries, the
 * dead-letter send's and the webhook's (the index write, the slot's release and the secret read
 * come on top, each a single call). Notify's function timeout (2 minutes) must exceed it.
 */
export function lastAttemptWorstCaseMs(timing: RetryTiming = CALL_TIMING): number {
  const webhook = worstCaseMs(WEBHOOK_TIMING);
  return 2 * worstCaseMs(timing) + webhook;
}

/**
 * Announces a finished generation: an EventBridge event ("Generation Succeeded" / "Generation
 * Failed") and then, when the request asked for one, a signed webhook. Both carry an id derived
 * from the generation and the outcome (`detail.eventId`, `webhook-id`), so a repeat is
 * deduplicable.
 *
 * - **The event** is tried {@link CALL_TIMING} (3 tries, with backoff). Still refused, it throws
 *   {@link EventNotPublishedError} before the webhook, so the state machine runs Notify again
 *   (its Retry), and every run that gets as far as the webhook published the event first: the
 *   webhook goes out once. On the last attempt (`lastAttempt`) an event still refused goes to
 *   the dead-letter queue instead, and the webhook follows; if the dead-letter queue refuses it
 *   too, the announcement is logged whole and, after the webhook, {@link AnnouncementLostError}.
 * - **The webhook** can never change the generation's outcome: its failures are recorded
 *   (`generations/{id}/webhook.json`) and logged, never thrown.
 */
export async function notifyCompletion(input: NotifyInput, deps: NotifyDeps): Promise<NotifyResult> {
  const { state } = input;
  const request = generationRequestSchema.safeParse(state.request);
  // A webhook URL often carries a token in its query: it never goes into events or payloads.
  const publicRequest = request.success ? { ...request.data, webhook_url: undefined } : undefined;
  const detail =
    input.outcome === 'succeeded' ? successDetail(state, publicRequest) : failureDetail(state, publicRequest);
  const log = { generationId: state.id, outcome: input.outcome };

  const detailType = input.outcome === 'succeeded' ? DETAIL_TYPE.succeeded : DETAIL_TYPE.failed;
  // EventBridge gives every PutEvents entry an id of its own: `eventId` is the one that stays the
  // same when a retried Notify publishes the same outcome again.
  const eventId = deliveryId('evt', state.id, detailType);
  const announced = await publishOrDeadLetter(
    { generationId: state.id, detailType, detail: { eventId, ...detail }, lastAttempt: input.lastAttempt },
    deps,
    log,
  );
  const lost = () =>
    new AnnouncementLostError(
      `The "${detailType}" event of ${state.id} was neither published nor dead-lettered: its entry is in the error log`,
    );

  const webhookType: WebhookEvent =
    input.outcome === 'succeeded' ? 'generation.succeeded' : 'generation.failed';
  const wanted =
    request.success &&
    request.data.webhook_url &&
    (request.data.webhook_events ?? [webhookType]).includes(webhookType);
  if (!wanted || !request.success || !request.data.webhook_url || !deps.webhookSecret) {
    if (wanted && !deps.webhookSecret)
      deps.logger.warn('Webhook requested but webhooks are off in this deployment', log);
    if (announced === 'lost') throw lost();
    return { event: announced };
  }

  const delivery = await deliverWebhook(request.data.webhook_url, webhookType, detail, {
    // The same for every delivery of this generation's outcome, retried Notify included.
    webhookId: deliveryId('msg', state.id, webhookType),
    secret: await deps.webhookSecret(),
    policy: deps.webhookPolicy,
    ...deps.webhookTiming,
  });
  const recordKey = `generations/${state.id}/webhook.json`;
  await writeRecord(deps, recordKey, delivery, log);
  if (!delivery.delivered)
    deps.logger.warn('Webhook not delivered', {
      ...log,
      // The host only: a webhook URL's path often is its secret (e.g. chat-app hooks).
      host: hostOf(delivery.url),
      attempts: delivery.attempts.length,
    });
  if (announced === 'lost') throw lost();
  return {
    event: announced,
    webhook: { delivered: delivery.delivered, attempts: delivery.attempts.length, recordKey },
  };
}

/**
 * Publishes the event, tried {@link CALL_TIMING}. Refused: throws {@link EventNotPublishedError},
 * or on the last attempt sends it to the dead-letter queue (`lost` when that fails too).
 */
async function publishOrDeadLetter(
  event: {
    generationId: string;
    detailType: string;
    detail: Record<string, unknown> & { eventId: string };
    lastAttempt?: boolean;
  },
  deps: NotifyDeps,
  log: Record<string, unknown>,
): Promise<NotifyResult['event'] | 'lost'> {
  const timing = { ...CALL_TIMING, ...deps.callTiming };
  let reason: string;
  try {
    await withRetries(() => deps.events.publish(event.detailType, event.detail), timing);
    return 'published';
  } catch (error) {
    reason = describeError(error);
  }
  if (!event.lastAttempt) {
    deps.logger.warn('Completion event not published: the workflow tries again', { ...log, reason });
    throw new EventNotPublishedError(
      `EventBridge did not take the "${event.detailType}" event of ${event.generationId} in ${timing.attempts} tries: ${reason}`,
    );
  }
  const letter: DeadLetteredAnnouncement = {
    kind: 'announcement',
    generationId: event.generationId,
    eventId: event.detail.eventId,
    detailType: event.detailType,
    reason,
    at: new Date().toISOString(),
    entry: {
      Source: EVENT_SOURCE,
      DetailType: event.detailType,
      Detail: JSON.stringify(event.detail),
      ...(deps.eventBusName ? { EventBusName: deps.eventBusName } : {}),
    },
  };
  const deadLetters = deps.deadLetters ?? loggedDeadLetters(deps.logger);
  try {
    await withRetries(() => deadLetters.send(letter), timing);
  } catch (error) {
    deps.logger.error('Completion event lost: neither published nor dead-lettered', {
      ...log,
      reason,
      deadLetterReason: describeError(error),
      announcement: letter,
    });
    return 'lost';
  }
  deps.logger.warn('Completion event not published: dead-lettered', { ...log, reason });
  return 'dead-lettered';
}

/**
 * Dead letters kept in the error log, whole: where there is no queue (the local runner by
 * default, whose event sink does not refuse events anyway).
 */
export function loggedDeadLetters(logger: Logger): AnnouncementDeadLetters {
  return {
    async send(announcement) {
      logger.error('Completion event dead-lettered to the log (no dead-letter queue)', {
        generationId: announcement.generationId,
        announcement,
      });
    },
  };
}

function successDetail(state: NotifyInput['state'], request: unknown): Record<string, unknown> {
  const result = persistResultSchema.safeParse(state.result);
  const task = taskStateSchema.safeParse(state.task);
  return {
    id: state.id,
    status: 'succeeded',
    request,
    images: result.success
      ? result.data.images.map(({ key, bytes, sha256, contentType, seed }) => ({
          key,
          bytes,
          sha256,
          contentType,
          seed,
        }))
      : [],
    failedImages: result.success ? result.data.failed : [],
    manifestKey: result.success ? result.data.manifestKey : undefined,
    usage: { imageCount: result.success ? result.data.images.length : 0 },
    dashscopeTaskId: task.success ? task.data.taskId : undefined,
  };
}

function failureDetail(state: NotifyInput['state'], request: unknown): Record<string, unknown> {
  const task = taskStateSchema.safeParse(state.task);
  const name = state.failure?.Error ?? 'Error';
  return {
    id: state.id,
    status: statusOfError(name),
    request,
    error: { name, ...failureView(name, state.failure?.Cause, task.success ? task.data : undefined) },
  };
}

async function writeRecord(
  deps: NotifyDeps,
  key: string,
  record: DeliveryRecord,
  log: Record<string, unknown>,
): Promise<void> {
  try {
    await deps.objects.putJson({ bucket: deps.bucket, key }, record);
  } catch (error) {
    deps.logger.warn('Webhook delivery record not written', { ...log, reason: describeError(error) });
  }
}

function hostOf(url: string): string | undefined {
  try {
    return new URL(url).host;
  } catch {
    return undefined;
  }
}
