import type { z } from 'zod';
import { InvalidRequestError } from './errors.js';
import { formatIssues } from './generation-request.js';

/**
 * Parses a Lambda event with its schema. A bad event becomes an {@link InvalidRequestError} whose
 * message names every bad field, so the execution fails with a readable cause.
 */
export function parseEvent<S extends z.ZodType>(schema: S, event: unknown): z.output<S> {
  const parsed = schema.safeParse(event);
  if (!parsed.success) throw new InvalidRequestError(`Invalid event: ${formatIssues(parsed.error)}`);
  return parsed.data;
}
