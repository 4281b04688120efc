import type { Context } from 'aws-lambda';
import { createLambdaLogger, type LambdaLogger } from './logger.js';
import { createLambdaMetrics, type LambdaMetrics, type Service } from './metrics.js';

/** What every Lambda entry gets from the platform side: its Powertools logger and EMF metrics. */
export interface LambdaObservability {
  readonly logger: LambdaLogger;
  readonly metrics: LambdaMetrics;
}

/**
 * A Lambda entry point around a handler built on the first call (once per container, from the
 * environment). Each invocation adds the Lambda context to the logs and flushes its metrics,
 * also when the handler throws.
 */
export function lambdaEntry<E, R>(
  service: Service,
  build: (observability: LambdaObservability) => (event: E, context?: Context) => Promise<R>,
): (event: E, context?: Context) => Promise<R> {
  let built:
    | { observability: LambdaObservability; handle: (event: E, context?: Context) => Promise<R> }
    | undefined;
  return async (event, context) => {
    if (!built) {
      const observability = { logger: createLambdaLogger(service), metrics: createLambdaMetrics(service) };
      built = { observability, handle: build(observability) };
    }
    const { observability, handle } = built;
    if (context) observability.logger.addContext(context);
    try {
      return await handle(event, context);
    } finally {
      observability.metrics.flush();
    }
  };
}
