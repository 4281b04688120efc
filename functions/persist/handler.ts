import { S3Client } from '@aws-sdk/client-s3';
import { systemClock } from '../shared/clock.js';
import { loadConfig, type PersistConfig } from '../shared/config.js';
import { dashscopeFromConfig } from '../shared/dashscope-from-env.js';
import { createLambdaLogger } from '../shared/logger.js';
import { parseEvent } from '../shared/parse-event.js';
import type { Runtime } from '../shared/runtime.js';
import { type PersistResult, taskInputSchema } from '../shared/workflow-state.js';
import { type PersistDeps, persistGeneration } from './persist.js';

export interface PersistRuntime extends Runtime {
  readonly s3: S3Client;
  /** Accept plain-http result URLs: only for the local emulator, never set on AWS. */
  readonly allowHttpResults?: boolean;
}

/** Wires the Persist dependencies from configuration and a runtime (AWS or local). */
export function persistDeps(config: PersistConfig, runtime: PersistRuntime): PersistDeps {
  return {
    dashscope: dashscopeFromConfig(config, runtime.fetch),
    s3: runtime.s3,
    bucket: config.BUCKET_NAME,
    fetch: runtime.fetch ?? globalThis.fetch,
    clock: runtime.clock,
    logger: runtime.logger,
    resultUrls: { hosts: config.RESULT_HOSTS, allowHttp: runtime.allowHttpResults ?? false },
    maxImageBytes: config.MAX_IMAGE_BYTES,
    downloadTimeoutMs: config.DOWNLOAD_TIMEOUT_MS,
  };
}

/** The Persist state's handler over explicit dependencies (the local runner uses this too). */
export function createPersistHandler(deps: PersistDeps): (event: unknown) => Promise<PersistResult> {
  return (event) => persistGeneration(parseEvent(taskInputSchema, event), deps);
}

let lambdaHandler: ((event: unknown) => Promise<PersistResult>) | undefined;

/** Lambda entry: dependencies are built from the environment on the first call, once per container. */
export const handler = (event: unknown): Promise<PersistResult> => {
  lambdaHandler ??= createPersistHandler(
    persistDeps(loadConfig('persist', process.env), {
      clock: systemClock,
      logger: createLambdaLogger('persist'),
      s3: new S3Client({}),
    }),
  );
  return lambdaHandler(event);
};
