import type { Clock } from './clock.js';
import type { Logger } from './logger.js';

/** What differs between Lambda and the local runner, beyond configuration. */
export interface Runtime {
  readonly clock: Clock;
  readonly logger: Logger;
  /** @default globalThis.fetch */
  readonly fetch?: typeof fetch;
}
