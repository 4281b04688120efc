import type { Clock, Sleep } from './clock.js';
import type { Logger } from './logger.js';
import type { Metrics } from './metrics.js';

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
}
