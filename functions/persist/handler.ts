import { S3Client } from '@aws-sdk/client-s3';
import { systemClock } from '../shared/clock.js';
import { type DashScopeAccounts, dashscopeAccounts } from '../shared/dashscope-from-env.js';
import { lambdaEntry } from '../shared/lambda-entry.js';
import { correlationOf, withKeys } from '../shared/logger.js';
import { countThrottles, METRIC, type Metrics, noMetrics, SERVICE } from '../shared/metrics.js';
import { parseEvent } from '../shared/parse-event.js';
import type { Runtime } from '../shared/runtime.js';
import { type PersistResult, taskInputSchema } from '../shared/workflow-state.js';
import { type PersistDeps, persistGeneration } from './persist.js';
import { sharpThumbnail } from './sharp-thumbnail.js';
import { type PersistConfig, persistSpec } from './spec.js';

export interface PersistRuntime extends Runtime {
  readonly s3: S3Client;
  /** Accept plain-http result URLs: only for the local emulator, never set on AWS. */
  readonly allowHttpResults?: boolean;
}

/** Persist's dependencies plus the metrics its handler emits. */
export interface PersistHandlerDeps extends PersistDeps {
  /** Every configured account: results are fetched from the task's own. @default `dashscope` only */
  readonly accounts?: DashScopeAccounts;
  /** @default noMetrics */
  readonly metrics?: Metrics;
}

/** Wires the Persist dependencies from configuration and a runtime (AWS or local). */
export function persistDeps(config: PersistConfig, runtime: PersistRuntime): PersistHandlerDeps {
  const metrics = runtime.metrics ?? noMetrics;
  const accounts = dashscopeAccounts(config, countThrottles(runtime.fetch, metrics), {
    readSecret: runtime.readSecret,
    now: () => runtime.clock.now(),
  });
  return {
    dashscope: accounts.client(),
    accounts,
    s3: runtime.s3,
    bucket: config.BUCKET_NAME,
    fetch: runtime.fetch ?? globalThis.fetch,
    clock: runtime.clock,
    logger: runtime.logger,
    resultUrls: { hosts: config.RESULT_HOSTS, allowHttp: runtime.allowHttpResults ?? false },
    maxImageBytes: config.MAX_IMAGE_BYTES,
    downloadTimeoutMs: config.DOWNLOAD_TIMEOUT_MS,
    downloadMinBytesPerSecond: config.DOWNLOAD_MIN_BYTES_PER_SECOND,
    downloadStallWindowMs: config.DOWNLOAD_STALL_WINDOW_MS,
    makeThumbnail: sharpThumbnail(),
    metrics,
  };
}

/**
 * The Persist state's handler over explicit dependencies (the local runner uses this too). Every
 * log line carries the generation, execution and DashScope task ids; a run that stored images
 * counts their bytes (`BytesPersisted`), and the images stored and failed.
 */
export function createPersistHandler(deps: PersistHandlerDeps): (event: unknown) => Promise<PersistResult> {
  return async (event) => {
    const logger = withKeys(deps.logger, correlationOf(event));
    const input = parseEvent(taskInputSchema, event);
    const dashscope = deps.accounts ? deps.accounts.client(input.task.account) : deps.dashscope;
    const result = await persistGeneration(input, { ...deps, dashscope, logger });
    const metrics = deps.metrics ?? noMetrics;
    const bytes = result.images.reduce((sum, image) => sum + image.bytes, 0);
    metrics.add(METRIC.bytesPersisted, 'Bytes', bytes);
    metrics.add(METRIC.imagesPersisted, 'Count', result.images.length);
    metrics.add(METRIC.imagesFailed, 'Count', result.failed.length);
    return result;
  };
}

/** Lambda entry: dependencies are built from the environment on the first call, once per container. */
export const handler = lambdaEntry(SERVICE.persist, ({ logger, metrics }) =>
  createPersistHandler(
    persistDeps(persistSpec.parse(process.env), {
      clock: systemClock,
      logger,
      metrics,
      s3: new S3Client({}),
    }),
  ),
);
