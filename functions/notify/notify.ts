import * as z from 'zod';
import { describeError } from '../shared/errors.js';
import { DETAIL_TYPE, deliveryId, type EventPublisher } from '../shared/events.js';
import { failureView, statusOfError } from '../shared/failure.js';
import { generationRequestSchema, type WebhookEvent } from '../shared/generation-request.js';
import type { Logger } from '../shared/logger.js';
import type { ObjectStore } from '../shared/object-store.js';
import { persistResultSchema, taskStateSchema } from '../shared/workflow-state.js';
import { type DeliveryRecord, deliverWebhook, type WebhookPolicy } from './webhook.js';

/** What the workflow's last states pass: the outcome and the whole state (parsed leniently). */
export const notifyInputSchema = z.object({
  outcome: z.enum(['succeeded', 'failed']),
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
}

export interface NotifyResult {
  readonly event: 'published' | 'failed';
  readonly webhook?: { readonly delivered: boolean; readonly attempts: number; readonly recordKey: string };
}

/**
 * Announces a finished generation: an EventBridge event ("Generation Succeeded" / "Generation
 * Failed") and, when the request asked for one, a signed webhook. Both carry an id derived from
 * the generation and the outcome (`detail.eventId`, `webhook-id`), so a repeat is deduplicable.
 * Neither can change the generation's outcome: failures are logged and recorded
 * (`generations/{id}/webhook.json`), and this function does not throw for them.
 */
export async function notifyCompletion(input: NotifyInput, deps: NotifyDeps): Promise<NotifyResult> {
  const { state } = input;
  const request = generationRequestSchema.safeParse(state.request);
  // A webhook URL often carries a token in its query: it never goes into events or payloads.
  const publicRequest = request.success ? { ...request.data, webhook_url: undefined } : undefined;
  const detail =
    input.outcome === 'succeeded' ? successDetail(state, publicRequest) : failureDetail(state, publicRequest);
  const log = { generationId: state.id, outcome: input.outcome };

  let event: NotifyResult['event'] = 'published';
  const detailType = input.outcome === 'succeeded' ? DETAIL_TYPE.succeeded : DETAIL_TYPE.failed;
  try {
    // EventBridge gives every PutEvents entry an id of its own: `eventId` is the one that stays
    // the same when a retried Notify publishes the same outcome again.
    await deps.events.publish(detailType, { eventId: deliveryId('evt', state.id, detailType), ...detail });
  } catch (error) {
    event = 'failed';
    deps.logger.warn('Completion event not published', { ...log, reason: describeError(error) });
  }

  const webhookType: WebhookEvent =
    input.outcome === 'succeeded' ? 'generation.succeeded' : 'generation.failed';
  const wanted =
    request.success &&
    request.data.webhook_url &&
    (request.data.webhook_events ?? [webhookType]).includes(webhookType);
  if (!wanted || !request.success || !request.data.webhook_url) return { event };
  if (!deps.webhookSecret) {
    deps.logger.warn('Webhook requested but webhooks are off in this deployment', log);
    return { event };
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
  return { event, webhook: { delivered: delivery.delivered, attempts: delivery.attempts.length, recordKey } };
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
