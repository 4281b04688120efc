import type { Clock } from '../../functions/shared/clock.js';

/** The two Stable Diffusion 3.5 models the service accepts. */
export const SD_MODELS = ['stable-diffusion-3.5-large', 'stable-diffusion-3.5-large-turbo'] as const;

/** One of {@link SD_MODELS}. */
export type SdModel = (typeof SD_MODELS)[number];

/** Every state a task can report, UNKNOWN included (gone or never existed). */
export type TaskStatus = 'PENDING' | 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'CANCELED' | 'UNKNOWN';

/** Knobs of one emulator instance; every field has a default. */
export interface EmulatorOptions {
  /** Source of all time; default the machine clock. */
  clock?: Clock;
  /** The only API key accepted; default `sk-local-emulator`. */
  apiKey?: string;
  /** Divides every run time, so 10 makes tasks finish ten times sooner; default 1. */
  speed?: number;
  /** Accepted submits allowed in any 1-second window; default 2 (the documented SD limit). */
  submitsPerSecond?: number;
  /** Tasks-API calls (query, cancel, list together) allowed in any 1-second window; default 20. */
  queriesPerSecond?: number;
  /** How long task records and result URLs live after the task ends; default 24 h. */
  resultTtlMs?: number;
  /**
   * Origin that result-image URLs point at, e.g. `http://127.0.0.1:4010`. A function is read on
   * every query, so a server can supply its address once it is listening. Without it, the origin
   * of the query request itself is used.
   */
  publicOrigin?: string | (() => string);
  /**
   * File that keeps the account's tasks across restarts, as the real service keeps them: every
   * submit, cancel and forget is appended to it as a JSON line (its folder is created if missing),
   * and on start it is replayed, then rewritten with only the tasks still known. One emulator per
   * file. Without it, tasks live as long as the emulator.
   */
  stateFile?: string;
}

/** {@link EmulatorOptions} with the defaults applied. */
export type ResolvedOptions = Required<Omit<EmulatorOptions, 'publicOrigin' | 'stateFile'>> &
  Pick<EmulatorOptions, 'publicOrigin' | 'stateFile'>;

/** Error answered for a whole task or a single image. */
export interface TaskError {
  code: string;
  message: string;
}

/** Script for the next accepted submit, queued with {@link EmulatorControl.planNextTask}. */
export interface TaskPlan {
  /** Zero-based image indexes that fail with `InternalError.Timeout`; out-of-range ones are ignored. */
  failImages?: number[];
  /** Makes the whole task end FAILED with this code and message. */
  fail?: TaskError;
  /**
   * Zero-based image indexes the task's `results` leave out, with no error entry in their place,
   * although the task SUCCEEDED and its `task_metrics` and `usage` count them as produced: a short
   * answer, as an adversarial or broken service gives it. Out-of-range ones are ignored.
   */
  omitResults?: number[];
  /**
   * Exact run time in ms, used as is (not divided by `speed`). `Infinity` makes a task that, once
   * it holds the account's runner, stays RUNNING for ever (and keeps every later task PENDING).
   */
  durationMs?: number;
  /**
   * What the downloads of an image do, by image index: each download takes the next fault of its
   * list, and the image is served normally once the list is used up.
   */
  downloadFaults?: Record<number, DownloadFault[]>;
  /**
   * The origin an image's result URL points at instead of the emulator's, by image index, e.g.
   * `http://localhost:4010` for a host outside an allow-list that still serves the image.
   */
  resultOrigins?: Record<number, string>;
}

/** API operations that faults can be injected into. */
export type EmulatorOp = 'submit' | 'get' | 'cancel' | 'list' | 'download';

/** Error answered instead of doing the work, see {@link EmulatorControl.injectFault}. */
export interface InjectedFault {
  status: number;
  code: string;
  /** Defaults to the service's usual message for well-known codes, else to the code. */
  message?: string;
}

/**
 * A fault of the connection rather than of the answer. These act on the HTTP server
 * ({@link startEmulator}); through `app.request()` the answer is returned as it is.
 * - `reset`: the connection is reset before the call is handled, so nothing happens.
 * - `lost-response`: the call is handled (a submit creates its task), then the connection is reset
 *   instead of answering.
 * - `slow`: the call is handled and its answer held back `delayMs` of real time, past a client's
 *   timeout.
 */
export type ConnectionFault =
  | { kind: 'reset' }
  | { kind: 'lost-response' }
  | { kind: 'slow'; delayMs: number };

/** What {@link EmulatorControl.injectFault} accepts: an error answer or a connection fault. */
export type EmulatorFault = InjectedFault | ConnectionFault;

/**
 * What one download of one result image does instead of serving it (see `TaskPlan.downloadFaults`).
 * - an {@link InjectedFault}: an OSS error answer, e.g. `{status: 403, code: 'AccessDenied',
 *   message: 'Request has expired.'}`;
 * - `reset`: the connection is reset before any answer;
 * - `truncate`: the headers announce the whole image, then the connection is reset after
 *   `afterBytes` of the body (default half);
 * - `serve`: answers 200 with this content type and body instead of the image;
 * - `oversize`: the image padded with trailing bytes to `bytes`, its length in `Content-Length`
 *   unless `declareLength` is false (then streamed, chunked);
 * - `trickle`: the headers announce the whole image at once, then the body arrives at
 *   `bytesPerSecond` (in real time, a chunk every 100 ms) until it is whole or the client gives up.
 */
export type DownloadFault =
  | InjectedFault
  | { kind: 'reset' }
  | { kind: 'truncate'; afterBytes?: number }
  | { kind: 'serve'; contentType: string; body: string }
  | { kind: 'oversize'; bytes: number; declareLength?: boolean }
  | { kind: 'trickle'; bytesPerSecond: number };

/** Read-only view of one task, as the emulator sees it at the time of the call. */
export interface TaskSnapshot {
  readonly taskId: string;
  readonly status: TaskStatus;
  readonly model: SdModel;
  readonly prompt: string;
  readonly negativePrompt: string | undefined;
  readonly initImage: string | undefined;
  readonly width: number;
  readonly height: number;
  readonly n: number;
  readonly steps: number;
  readonly cfg: number;
  readonly seed: number;
  readonly shift: number;
  readonly durationMs: number;
  readonly submittedAt: number;
  readonly scheduledAt: number | undefined;
  readonly endedAt: number | undefined;
}

/** Calls received since creation or the last reset. */
export interface EmulatorCounts {
  /** Authenticated submit calls, whatever their outcome. */
  submits: number;
  /** Authenticated tasks-API calls (get, cancel, list), whatever their outcome. */
  queries: number;
  /** Calls answered 429 by the rate limiters (injected faults not included). */
  throttled: number;
}

/** Test-side handle on an emulator: scripting, inspection and reset. */
export interface EmulatorControl {
  /** Queues a plan for the next accepted submit (plans are consumed first in, first out). */
  planNextTask(plan: TaskPlan): void;
  /**
   * Makes the next `times` calls of `op` answer `fault`; checked right after authentication (for
   * downloads, before the URL is checked).
   */
  injectFault(op: EmulatorOp, fault: EmulatorFault, times?: number): void;
  /**
   * Cancels a task from outside (another client of the account, the console): as the cancel API
   * does, only while it is PENDING. Returns whether it was cancelled.
   */
  cancelTask(taskId: string): boolean;
  /**
   * Drops a task's record at once, as its retention would: queries answer UNKNOWN and its result
   * URLs stop working. A RUNNING task frees the runner. Returns whether the task was known.
   */
  forgetTask(taskId: string): boolean;
  /** Snapshot of every task still known, oldest first. */
  tasks(): TaskSnapshot[];
  /** Snapshot of the call counters. */
  readonly counts: EmulatorCounts;
  /** Requests received per operation, whatever their answer (unauthenticated ones included). */
  readonly calls: Readonly<Record<EmulatorOp, number>>;
  /** Tasks created (accepted submits) by this emulator, those since forgotten or expired included. */
  readonly tasksCreated: number;
  /** Lines of the `stateFile` skipped as malformed when this emulator started (0 without one). */
  readonly skippedJournalLines: number;
  /** Forgets every task, plan, fault and counter, and empties the `stateFile`. */
  reset(): void;
}
