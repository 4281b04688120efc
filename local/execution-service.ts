import { canonicalJson } from '../functions/shared/canonical-json.js';
import type { Clock } from '../functions/shared/clock.js';
import {
  ExecutionAlreadyExistsError,
  type ExecutionRecord,
  type ExecutionService,
} from '../functions/shared/execution-service.js';
import {
  type ExecutionEnd,
  ExecutionStore,
  executionRecordOf,
  type StoredExecution,
} from './execution-store.js';
import type {
  AbortedOutcome,
  ExecutionOutcome,
  LocalRunner,
  RunningExecution,
  RunObserver,
} from './runner.js';

export interface LocalExecutionService extends ExecutionService {
  /** Resolves when the named execution has ended (or this engine stopped running it). */
  settled(name: string): Promise<void>;
  /**
   * Redrives every execution the store holds as running (a previous engine on this folder
   * stopped or died with them): each from the last Task state it entered, with that state's
   * input. Returns each, with a promise that settles once it has queued again for admission
   * (with this engine's task token) or ended.
   */
  resumeAll(): { readonly execution: StoredExecution; readonly queued: Promise<void> }[];
  /** How many executions run here now. */
  readonly runningCount: number;
  /**
   * Stops running every execution here without ending it (the process exits): each stays
   * recorded as running, and the next engine on this folder redrives it. Returns how many.
   */
  suspendAll(): Promise<number>;
}

/**
 * The local adapter of the execution port: executions run in-process through the local runner
 * (the synthesized state machine), with Step Functions' semantics for names, statuses and stop.
 * Like Step Functions, it keeps them durably ({@link ExecutionStore}): a running execution notes
 * each Task state it enters, so an engine started after this process ended redrives it from
 * there; an ended one is still described, so a redelivered request file finds its lines started.
 */
export function createLocalExecutionService(
  runner: LocalRunner,
  clock: Clock,
  options: { readonly store?: ExecutionStore; readonly observer?: RunObserver } = {},
): LocalExecutionService {
  const store = options.store ?? new ExecutionStore(undefined);
  /** What runs in this process: the engine's handle and the promise of its end, by name. */
  const live = new Map<string, { handle: RunningExecution; done: Promise<void> }>();
  /** Stops asked for before the execution ended: the end is recorded as this stop. */
  const stopReasons = new Map<string, { error: string; cause: string; at: number }>();

  const run = (stored: StoredExecution, from: StoredExecution['checkpoint'], onQueued?: () => void) => {
    const handle = runner.start(stored.name, stored.input, options.observer, {
      from,
      onQueued,
      startDate: stored.startDate,
      onStateEntered: (checkpoint) => store.checkpoint(stored.name, checkpoint),
      onEnded: (ended) => store.end(stored.name, endOf(ended, stopReasons.get(stored.name), clock)),
    });
    const done = handle.outcome.then(
      () => {},
      () => {},
    );
    live.set(stored.name, { handle, done });
    void done.then(() => {
      live.delete(stored.name);
      stopReasons.delete(stored.name);
    });
  };

  return {
    async start(name, input) {
      const existing = store.get(name);
      if (existing) {
        // A stop asked for closes the execution at once, as StopExecution does (describe shows it
        // ABORTED), though its run here takes a moment to end: no longer running for a start.
        const running = existing.status === 'RUNNING' && !stopReasons.has(name);
        if (running && canonicalJson(existing.input) === canonicalJson(input)) {
          return { startDate: new Date(existing.startDate) };
        }
        throw new ExecutionAlreadyExistsError(`Execution already exists: ${name}`);
      }
      const startDate = clock.now();
      const stored = {
        name,
        input: structuredClone(input),
        startDate,
        checkpoint: { state: runner.definition.StartAt, input: structuredClone(input) },
      };
      // Recorded before it runs: once StartExecution answers, the execution outlives the process.
      await store.create(stored);
      run({ ...stored, status: 'RUNNING' }, undefined);
      return { startDate: new Date(startDate) };
    },

    async describe(name): Promise<ExecutionRecord | undefined> {
      const stored = store.get(name);
      if (!stored) return undefined;
      const stop = stopReasons.get(name);
      // A stop answers at once, as StopExecution does; the record follows when the run ends.
      if (stop && stored.status === 'RUNNING') {
        return executionRecordOf({ ...stored, ...endOf({ status: 'ABORTED' }, stop, clock) });
      }
      return executionRecordOf(stored);
    },

    async stop(name, reason) {
      const running = live.get(name);
      if (!running || stopReasons.has(name)) return;
      stopReasons.set(name, { ...reason, at: clock.now() });
      running.handle.abort(reason);
      // Like StopExecution, the stop is done when it answers; the status change follows.
      await running.done;
    },

    async settled(name) {
      await live.get(name)?.done;
    },

    resumeAll() {
      return store
        .running()
        .filter((stored) => !live.has(stored.name))
        .map((execution) => {
          let onQueued = () => {};
          const queued = new Promise<void>((resolve) => {
            onQueued = resolve;
          });
          run(execution, execution.checkpoint, onQueued);
          return { execution, queued };
        });
    },

    get runningCount() {
      return live.size;
    },

    async suspendAll() {
      const count = live.size;
      await runner.suspendAll();
      await store.flush();
      return count;
    },
  };
}

function endOf(
  ended: ExecutionOutcome | AbortedOutcome,
  stop: { error: string; cause: string; at: number } | undefined,
  clock: Clock,
): ExecutionEnd {
  if (ended.status === 'SUCCEEDED')
    return { status: 'SUCCEEDED', stopDate: clock.now(), output: ended.output };
  if (ended.status === 'FAILED')
    return { status: 'FAILED', stopDate: clock.now(), error: ended.error, cause: ended.cause };
  return { status: 'ABORTED', stopDate: stop?.at ?? clock.now(), error: stop?.error, cause: stop?.cause };
}
