import * as z from 'zod';
import {
  bucketVariable,
  DEFAULT_MAX_IMAGE_BYTES,
  DEFAULT_RESULT_HOSTS,
  dashscopeKeyCheck,
  dashscopeVariables,
} from '../shared/config.js';
import { DOWNLOAD_BUDGET } from '../shared/download-budget.js';
import { type ConfigOf, env, environmentSpec } from '../shared/env-spec.js';
import { HOST_PATTERN_MESSAGE, isHostPattern } from '../shared/host-pattern.js';

/** Persist copies the result images into the bucket from the hosts DashScope serves them on. */
export const persistSpec = environmentSpec(
  'persist',
  {
    ...dashscopeVariables,
    BUCKET_NAME: bucketVariable,
    /** The hosts result URLs may point at (patterns such as `*.aliyuncs.com`). */
    RESULT_HOSTS: env
      .list(z.string().refine(isHostPattern, HOST_PATTERN_MESSAGE))
      .default(DEFAULT_RESULT_HOSTS),
    MAX_IMAGE_BYTES: env.int().default(DEFAULT_MAX_IMAGE_BYTES),
    /** Deadline of one result download, whole body included (see download-budget.ts). */
    DOWNLOAD_TIMEOUT_MS: env.int().default(DOWNLOAD_BUDGET.timeoutMs),
    /** A download slower than this over the stall window is abandoned as stalled. */
    DOWNLOAD_MIN_BYTES_PER_SECOND: env.int().default(DOWNLOAD_BUDGET.minBytesPerSecond),
    DOWNLOAD_STALL_WINDOW_MS: env.int().default(DOWNLOAD_BUDGET.stallWindowMs),
  },
  dashscopeKeyCheck,
);
export type PersistConfig = ConfigOf<typeof persistSpec.variables>;
