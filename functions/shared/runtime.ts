import type { Admission } from './admission.js';
import type { Clock, Sleep } from './clock.js';
import type { GenerationIndex } from './generation-index.js';
import type { Logger } from './logger.js';
import type { Metrics } from './metrics.js';
import type { SecretReader } from './secret.js';

/** What differs between Lambda and the local runner, beyond configuration. */
export interface Runtime {
  readonly clock: Clock;
  /** Sleeps within an invocation (Poll's tail polling), on the same time as `clock`. @default realSleep */
  readonly sleep?: Sleep;
  readonly logger: Logger;
  /** @default globalThis.fetch */
  readonly fetch?: typeof fetch;
  /** @default noMetrics */
  readonly metrics?: Metrics;
  /** The generations index the workflow's functions keep up to date. @default none (unit tests) */
  readonly index?: GenerationIndex;
  /** The admission queue and the dispatcher's doorbell: slots are noted and released. @default none */
  readonly admission?: Admission;
  /** Reads a Secrets Manager secret. @default GetSecretValue with the Lambda runtime's SDK */
  readonly readSecret?: SecretReader;
}
