import { realSleep, type Sleep } from '../shared/clock.js';

/** How hard one call is tried: tries in all, the wait before the second (doubling after), each try's limit. */
export interface RetryTiming {
  readonly attempts: number;
  readonly firstBackoffMs: number;
  readonly timeoutMs: number;
}

/**
 * The EventBridge publish and the dead-letter send: 3 tries of at most 5 s each (the SDK's own
 * retries run inside a try), 250 ms then 500 ms apart at most. 15.75 s at worst, so a last attempt
 * (publish, dead-letter, webhook) fits Notify's timeout: {@link worstCaseMs}.
 */
export const CALL_TIMING: RetryTiming = { attempts: 3, firstBackoffMs: 250, timeoutMs: 5000 };

/** The longest {@link withRetries} can take with `timing`: every try to its limit, every wait in full. */
export function worstCaseMs(timing: RetryTiming): number {
  let waits = 0;
  for (let k = 0; k < timing.attempts - 1; k++) waits += timing.firstBackoffMs * 2 ** k;
  return timing.attempts * timing.timeoutMs + waits;
}

/** A try that got no answer within its limit. */
export class CallTimeoutError extends Error {
  override readonly name = 'CallTimeoutError';
}

/**
 * Runs `call` up to `timing.attempts` times, each try abandoned after `timing.timeoutMs` (its
 * promise is left to settle unobserved), waiting between tries a random share (full jitter) of
 * `firstBackoffMs`, doubling: so a burst of Notify invocations meeting the same outage do not
 * come back in step. Throws the last try's error.
 */
export async function withRetries<T>(
  call: () => Promise<T>,
  timing: RetryTiming,
  sleep: Sleep = realSleep,
): Promise<T> {
  let last: unknown;
  for (let attempt = 1; attempt <= timing.attempts; attempt++) {
    try {
      return await withTimeout(call, timing.timeoutMs);
    } catch (error) {
      last = error;
    }
    if (attempt < timing.attempts) await sleep(Math.random() * timing.firstBackoffMs * 2 ** (attempt - 1));
  }
  throw last;
}

async function withTimeout<T>(call: () => Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new CallTimeoutError(`No answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([call(), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
