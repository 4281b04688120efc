import { setTimeout as sleep } from 'node:timers/promises';

export interface WaitForOptions {
  /** What the wait is for, as the failure names it ("npm start to listen", "gen-1 to end"). */
  readonly what: string;
  /**
   * The most it may take, in real time: a bound on a hang, never a measure. Generous, for the
   * machine may be busy (≥ 60 s for anything that waits on a process, a server or a workflow).
   */
  readonly timeoutMs: number;
  /** Pause between two looks, in ms. @default 100 */
  readonly intervalMs?: number;
}

/**
 * The one poll loop of the tests: calls `condition` until it returns something other than
 * undefined or false, and returns that; fails naming `what` after `timeoutMs`. A condition that
 * throws ends the wait with its error (a process that died, a generation that failed).
 */
export async function waitFor<T>(
  condition: () => Promise<T | undefined | false> | T | undefined | false,
  options: WaitForOptions,
): Promise<T> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    const value = await condition();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline)
      throw new Error(`Timed out after ${options.timeoutMs} ms waiting for ${options.what}`);
    await sleep(options.intervalMs ?? 100);
  }
}
