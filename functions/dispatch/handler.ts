import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SFNClient } from '@aws-sdk/client-sfn';
import type { Context } from 'aws-lambda';
import { type AdmissionQueue, type AdmissionSettings, LANES } from '../shared/admission.js';
import { createDynamoAdmissionQueue, createDynamoDispatcherLease } from '../shared/aws/dynamodb-admission.js';
import { createDynamoGenerationIndex } from '../shared/aws/dynamodb-index.js';
import { createSfnResumer } from '../shared/aws/sfn-resumer.js';
import { realSleep, systemClock } from '../shared/clock.js';
import { lambdaEntry } from '../shared/lambda-entry.js';
import type { Logger } from '../shared/logger.js';
import { METRIC, type Metrics, SERVICE } from '../shared/metrics.js';
import { type DispatchDeps, dispatchInTurn, type TurnDeps, type TurnReport } from './dispatch.js';
import { type DispatchConfig, dispatchSpec } from './spec.js';

/** Wires the dispatcher from configuration and its collaborators (AWS or local). */
export function dispatchDeps(
  config: DispatchConfig,
  ports: Omit<DispatchDeps & TurnDeps, 'settings'>,
): DispatchDeps & TurnDeps {
  return { ...ports, settings: config.ADMISSION };
}

/**
 * The dispatcher's handler: every invocation (a kick from Admit, Poll, Notify or the reconciler,
 * or the one-minute sweep) takes its turn at {@link dispatchInTurn}: it runs, or leaves a request
 * with the invocation that holds the lease. The event itself carries nothing.
 */
export function createDispatchHandler(
  deps: DispatchDeps & TurnDeps,
): (event: unknown, context?: Context) => Promise<TurnReport> {
  return async (_event, context) =>
    dispatchInTurn({
      ...deps,
      ...(context ? { remainingMs: () => context.getRemainingTimeInMillis() } : {}),
    });
}

/** Lambda entry: dependencies are built from the environment on the first call, once per container. */
export const handler = lambdaEntry(SERVICE.dispatch, ({ logger, metrics }) => {
  const config = dispatchSpec.parse(process.env);
  const dynamo = new DynamoDBClient({});
  const queue = createDynamoAdmissionQueue(dynamo, config.GENERATIONS_TABLE);
  return watchingTheQueue<[context?: Context], TurnReport>(
    queue,
    config.ADMISSION,
    metrics,
    logger,
    createDispatchHandler(
      dispatchDeps(config, {
        queue,
        lease: createDynamoDispatcherLease(dynamo, config.GENERATIONS_TABLE),
        index: createDynamoGenerationIndex(dynamo, config.GENERATIONS_TABLE),
        resumer: createSfnResumer(new SFNClient({})),
        clock: systemClock,
        sleep: realSleep,
        logger,
      }),
    ),
  );
});

/**
 * The one-minute sweep (EventBridge's "Scheduled Event") also measures the queue:
 * {@link METRIC.oldestWaitingSeconds}, which the queue's alarm reads. Kicks do not (they come by
 * the dozen under load). A failed measurement is logged, never fatal to the run.
 */
export function watchingTheQueue<A extends unknown[], R>(
  queue: AdmissionQueue,
  settings: AdmissionSettings,
  metrics: Metrics,
  logger: Logger,
  handle: (event: unknown, ...rest: A) => Promise<R>,
): (event: unknown, ...rest: A) => Promise<R> {
  return async (event, ...rest) => {
    const result = await handle(event, ...rest);
    if ((event as { 'detail-type'?: unknown } | null)?.['detail-type'] === 'Scheduled Event') {
      try {
        const seconds = await oldestWaitingPastEstimate(queue, settings, Date.now());
        metrics.add(METRIC.oldestWaitingSeconds, 'Seconds', seconds);
      } catch (error) {
        logger.warn('Admission queue not measured', { reason: String(error) });
      }
    }
    return result;
  };
}

/**
 * Seconds the oldest waiting entry is past its estimated start, 0 when none waits or none is
 * late. Its start is expected when the first slot frees: at once on an account below its depth,
 * else when the earliest of its slots' tasks should end (its start, or its grant, plus its
 * expected run); never before the entry arrived. A slot whose task overran its estimate by an
 * hour (DashScope stuck, a release lost and not found) makes the head of the queue an hour late.
 */
export async function oldestWaitingPastEstimate(
  queue: AdmissionQueue,
  settings: AdmissionSettings,
  now: number,
): Promise<number> {
  const heads = (await Promise.all(LANES.map((lane) => queue.waiting(lane, 1)))).flat();
  if (heads.length === 0) return 0;
  const arrived = Math.min(...heads.map((entry) => entry.enqueuedAt));
  const freeAt = await Promise.all(
    settings.accounts.map(async (account) => {
      const slots = await queue.slots(account.name);
      if (slots.length < account.depth) return now;
      return Math.min(
        ...slots.map((slot) => (slot.startedAt ?? slot.grantedAt) + slot.expectedRunSeconds * 1000),
      );
    }),
  );
  const expected = Math.max(arrived, Math.min(...freeAt));
  return Math.max(0, Math.round((now - expected) / 1000));
}
