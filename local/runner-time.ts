import { AsyncLocalStorage } from 'node:async_hooks';
import { type Clock, realSleep, type Sleep, systemClock } from '../functions/shared/clock.js';
import { STATE_NAMES as STATE } from '../functions/shared/state-names.js';
import type { LocalRunnerOptions } from './runner.js';
import { type VirtualTimeParticipant, virtualTimeOf } from './virtual-time.js';

/** Time as the runner's executions, functions and dispatcher see it (see `virtualWaits`). */
export interface RunnerTime {
  readonly clock: Clock;
  /** Whether retry intervals are slept in virtual time (the engine's are then 0). */
  readonly virtualRetries: boolean;
  /** A new part in virtual time (an execution, a dispatcher run); undefined in real time. */
  join(): VirtualTimeParticipant | undefined;
  /**
   * Carries an execution's part into each invocation: a Lambda that sleeps within its
   * invocation (Poll's tail polling) sleeps on it. The handlers are shared, so the invocation
   * carries it.
   */
  readonly invocationTime: AsyncLocalStorage<VirtualTimeParticipant>;
  /** The functions' sleep: on the invocation's part in virtual time, else real. */
  readonly sleep: Sleep;
  /** The engine's own waits for one run of `taskStates`: 0 where they are slept in virtual time. */
  engineWaits(taskStates: readonly string[]): {
    readonly waitTimeOverrides: Record<string, number> | undefined;
    readonly retryIntervalOverrides: Record<string, number> | undefined;
  };
}

export function runnerTime(
  options: Pick<LocalRunnerOptions, 'clock' | 'virtualWaits' | 'retryIntervalMs'>,
): RunnerTime {
  const virtualWaits = options.virtualWaits;
  // Retries sleep in virtual time too, unless the caller fixed their real interval.
  const virtualRetries = virtualWaits !== undefined && options.retryIntervalMs === undefined;
  const invocationTime = new AsyncLocalStorage<VirtualTimeParticipant>();
  return {
    clock: options.clock ?? virtualWaits ?? systemClock,
    virtualRetries,
    join() {
      if (!virtualWaits) return undefined;
      if (virtualRetries) return virtualTimeOf(virtualWaits).join();
      return { sleep: async (ms) => virtualWaits.advance(ms), idle: (promise) => promise, leave: () => {} };
    },
    invocationTime,
    sleep: (ms) => invocationTime.getStore()?.sleep(ms) ?? realSleep(ms),
    engineWaits(taskStates) {
      const retryIntervalMs = virtualRetries ? 0 : options.retryIntervalMs;
      return {
        waitTimeOverrides: virtualWaits ? { [STATE.wait]: 0 } : undefined,
        retryIntervalOverrides:
          retryIntervalMs === undefined
            ? undefined
            : Object.fromEntries(taskStates.map((name) => [name, retryIntervalMs])),
      };
    },
  };
}
