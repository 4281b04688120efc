import { randomBytes } from 'node:crypto';
import { type DispatchReport, dispatch } from '../functions/dispatch/dispatch.js';
import type {
  AdmissionGrant,
  AdmissionQueue,
  AdmissionSettings,
  ExecutionResumer,
} from '../functions/shared/admission.js';
import { type Clock, realSleep, type Sleep } from '../functions/shared/clock.js';
import type { GenerationIndex } from '../functions/shared/generation-index.js';
import type { Logger } from '../functions/shared/logger.js';
import type { VirtualTimeParticipant } from './virtual-time.js';

const PROCESS_NONCE = randomBytes(6).toString('base64url');

/** The error a local execution's Admit state fails with, as SendTaskFailure would name it. */
class TaskFailure extends Error {
  constructor(name: string, cause: string) {
    super(cause);
    this.name = name;
  }
}

/**
 * Step Functions' task tokens, locally: the Admit state of each execution waits on {@link wait},
 * and the dispatcher's {@link ExecutionResumer} settles it. A token nobody waits on is `gone`.
 * One registry per process ({@link LOCAL_TASK_TOKENS}), as tokens are account-wide on AWS: two
 * runners over one table (tests) may each grant the other's executions.
 */
export class LocalTaskTokens implements ExecutionResumer {
  readonly #waiting = new Map<
    string,
    { resolve: (grant: AdmissionGrant) => void; reject: (error: Error) => void }
  >();
  #next = 0;

  /** A new token, unique in this process. */
  issue(id: string): string {
    this.#next += 1;
    // The process's own prefix: a token a previous engine left in the queue is never taken for one of this one's.
    return `local-task-token:${PROCESS_NONCE}:${id}:${this.#next}`;
  }

  /** Resolves with the grant once the dispatcher resumes `token`; rejects when it fails it. */
  wait(token: string): Promise<AdmissionGrant> {
    return new Promise((resolve, reject) => this.#waiting.set(token, { resolve, reject }));
  }

  /** Nothing waits on `token` any more (its execution was stopped). */
  forget(token: string): void {
    this.#waiting.delete(token);
  }

  async resume(token: string, grant: AdmissionGrant): Promise<'resumed' | 'gone'> {
    const waiter = this.#waiting.get(token);
    if (!waiter) return 'gone';
    this.#waiting.delete(token);
    waiter.resolve(grant);
    return 'resumed';
  }

  async fail(token: string, error: string, cause: string): Promise<'failed' | 'gone'> {
    const waiter = this.#waiting.get(token);
    if (!waiter) return 'gone';
    this.#waiting.delete(token);
    waiter.reject(new TaskFailure(error, cause));
    return 'failed';
  }
}

export interface LocalDispatcherOptions {
  readonly queue: AdmissionQueue;
  readonly resumer: ExecutionResumer;
  readonly index?: GenerationIndex;
  readonly settings: AdmissionSettings;
  readonly clock: Clock;
  readonly logger: Logger;
  /** The dispatcher's part in virtual time while it runs. @default real time */
  readonly joinVirtualTime?: () => VirtualTimeParticipant | undefined;
}

/**
 * The dispatcher in-process, as the stack runs it on Lambda: one run at a time. On AWS runs take
 * turns through a lease in the generations table (`dispatchInTurn`); here this loop is the only
 * dispatcher of its queue (one engine owns a `.local/` folder and runs it), so it calls
 * {@link dispatch} without the lease. A kick during a run makes one more run after it, as a
 * request left on the lease does on AWS. A kick returns at once, as an asynchronous invocation
 * does.
 */
export class LocalDispatcher {
  readonly #options: LocalDispatcherOptions;
  #running: Promise<void> | undefined;
  #again = false;
  /** The last 100 runs' reports, newest last (tests). */
  readonly reports: DispatchReport[] = [];

  constructor(options: LocalDispatcherOptions) {
    this.#options = options;
  }

  /** Holds runs back while an engine recovers (see {@link hold}). */
  #held = false;

  /** Asks for a run; the run itself happens in the background. */
  readonly kick = async (): Promise<void> => {
    this.#again = true;
    if (this.#running || this.#held) return;
    // Joined now, before the kicker goes on: the clock must not jump past the grants to come.
    const participant = this.#options.joinVirtualTime?.();
    this.#running = this.#loop(participant);
  };

  /**
   * No run starts until `release` is called; kicks meanwhile make one run then. A recovering
   * engine holds it while its executions queue again with fresh task tokens, so no grant goes to
   * a token of the previous process (which nobody waits on any more) and drops the entry.
   */
  hold(): { release(): void } {
    this.#held = true;
    return {
      release: () => {
        if (!this.#held) return;
        this.#held = false;
        if (this.#again) void this.kick();
      },
    };
  }

  /** Settles once no run is in progress (tests, and the end of a local execution). */
  async idle(): Promise<void> {
    while (this.#running) await this.#running;
  }

  /** Runs while kicks keep coming; the check and the end are one step, so no kick is lost. */
  async #loop(participant: VirtualTimeParticipant | undefined): Promise<void> {
    const sleep: Sleep = participant ? (ms) => participant.sleep(ms) : realSleep;
    try {
      while (this.#again) {
        this.#again = false;
        try {
          this.reports.push(await dispatch({ ...this.#options, sleep }));
          if (this.reports.length > 100) this.reports.shift();
        } catch (error) {
          // On AWS the next kick or the one-minute sweep runs again; locally, the next kick.
          this.#options.logger.warn('Dispatcher run failed', { reason: String(error) });
        }
      }
    } finally {
      participant?.leave();
      this.#running = undefined;
    }
  }
}

/** The process's task tokens, shared by every local runner. */
export const LOCAL_TASK_TOKENS = new LocalTaskTokens();
