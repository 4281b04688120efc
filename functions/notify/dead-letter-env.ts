import * as z from 'zod';
import { ConfigError } from '../shared/config.js';
import { DEAD_LETTER_QUEUE_VARIABLE } from '../shared/events.js';

/**
 * `DEAD_LETTER_QUEUE_URL`: the SQS queue Notify's last attempt and the reconciler put an event in
 * when EventBridge would not take it (the stack sets it on both functions). Unset: the error log.
 * Read beside `loadConfig`, from the environment the handler passes.
 */
const queueUrlSchema = z.url({ protocol: /^https$/, error: 'must be an SQS queue URL' }).optional();

/** The queue URL, or undefined; throws {@link ConfigError} naming the variable when it is malformed. */
export function deadLetterQueueUrl(env: Record<string, string | undefined>): string | undefined {
  const parsed = queueUrlSchema.safeParse(env[DEAD_LETTER_QUEUE_VARIABLE] || undefined);
  if (!parsed.success) {
    throw new ConfigError(
      `Invalid configuration: ${DEAD_LETTER_QUEUE_VARIABLE}: ${parsed.error.issues.map((i) => i.message).join('; ')}`,
    );
  }
  return parsed.data;
}
