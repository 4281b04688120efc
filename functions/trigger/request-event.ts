import { createHash } from 'node:crypto';
import * as z from 'zod';
import { describeError } from '../shared/errors.js';
import { DETAIL_TYPE, deliveryId, SCHEDULED_DETAIL_TYPE } from '../shared/events.js';
import { ExecutionAlreadyExistsError } from '../shared/execution-service.js';
import type { GenerationSource } from '../shared/generation-index.js';
import { parseRequestValue } from './request-file.js';
import type { TriggerDeps } from './trigger.js';

/** A "Generation Requested" event as EventBridge delivers it: its detail is the request. */
export const requestedEventSchema = z.object({
  id: z.string().min(1),
  'detail-type': z.literal(DETAIL_TYPE.requested),
  source: z.string(),
  detail: z.unknown(),
});
export type RequestedEvent = z.infer<typeof requestedEventSchema>;

/** What a schedule's rule passes: the rule's event id and time, the schedule's name and request. */
export const scheduledInputSchema = z.object({
  id: z.string().min(1),
  'detail-type': z.literal(SCHEDULED_DETAIL_TYPE),
  time: z.string().optional(),
  detail: z.object({ schedule: z.string().min(1), request: z.unknown() }),
});
export type ScheduledInput = z.infer<typeof scheduledInputSchema>;

export interface RequestEventResult {
  readonly id?: string;
  /** `started` (also for a repeated delivery of a running one), `duplicate`, or `rejected`. */
  readonly status: 'started' | 'duplicate' | 'rejected';
  readonly error?: { readonly type: string; readonly message: string; readonly details?: unknown };
}

const nameOf = (prefix: 'evt' | 'sch', ...parts: string[]) =>
  `${prefix}-${createHash('sha256').update(parts.join('\n')).digest('base64url').slice(0, 40)}`;

/**
 * Starts the generation a "Generation Requested" event asks for, named after the event's id
 * (`evt-…`): EventBridge delivers at least once, and a repeated delivery finds the name taken, so
 * one event starts one generation. An invalid request is announced as "Generation Request
 * Rejected" and starts nothing.
 */
export function triggerFromRequestedEvent(
  event: RequestedEvent,
  deps: TriggerDeps,
): Promise<RequestEventResult> {
  return startOne(
    nameOf('evt', event.id),
    'event',
    event.detail,
    { eventId: event.id, source: event.source },
    deps,
  );
}

/**
 * Starts a schedule's generation, named after the schedule and the rule's event id (`sch-…`), so
 * a repeated delivery of one firing starts it once.
 */
export function triggerFromSchedule(input: ScheduledInput, deps: TriggerDeps): Promise<RequestEventResult> {
  const { schedule, request } = input.detail;
  return startOne(
    nameOf('sch', schedule, input.id),
    'schedule',
    request,
    { eventId: input.id, schedule },
    deps,
  );
}

async function startOne(
  id: string,
  source: Extract<GenerationSource, 'event' | 'schedule'>,
  value: unknown,
  origin: Record<string, string>,
  deps: TriggerDeps,
): Promise<RequestEventResult> {
  const parsed = parseRequestValue(value, deps.defaultModel);
  if ('error' in parsed) {
    await deps.events
      .publish(DETAIL_TYPE.rejected, {
        source: origin,
        error: parsed.error,
        // A repeated delivery announces the same rejection: the same eventId lets receivers drop it.
        eventId: deliveryId('evt', DETAIL_TYPE.rejected, ...Object.values(origin)),
      })
      .catch((error: unknown) =>
        deps.logger.warn('Rejection event not published', { ...origin, reason: describeError(error) }),
      );
    deps.logger.info('Request rejected', { ...origin, reason: parsed.error.message });
    return { status: 'rejected', error: parsed.error };
  }
  await deps.index.register({
    id,
    createdAt: new Date(deps.clock.now()).toISOString(),
    source,
    request: parsed.request as Record<string, unknown>,
  });
  try {
    await deps.executions.start(id, parsed.request);
  } catch (error) {
    if (!(error instanceof ExecutionAlreadyExistsError)) throw error;
    deps.logger.info('Already started by an earlier delivery', { ...origin, generationId: id });
    return { id, status: 'duplicate' };
  }
  deps.logger.info('Generation started', { ...origin, generationId: id });
  return { id, status: 'started' };
}
