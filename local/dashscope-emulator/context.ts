import { systemClock } from '../../functions/shared/clock.js';
import { Account } from './account.js';
import { FaultQueue } from './faults.js';
import { ImageCache } from './image-cache.js';
import { checkPlan } from './new-task.js';
import { SlidingWindowLimiter } from './rate-limiter.js';
import { ResultUrlSigner } from './result-urls.js';
import { openTaskJournal } from './task-journal.js';
import { snapshotAt } from './task-record.js';
import type {
  EmulatorControl,
  EmulatorCounts,
  EmulatorOp,
  EmulatorOptions,
  ResolvedOptions,
  TaskPlan,
} from './types.js';

const DAY_MS = 24 * 60 * 60 * 1000;

/** The mutable state of one emulator, shared by its routes and its control handle. */
export interface EmulatorContext {
  readonly config: ResolvedOptions;
  readonly account: Account;
  readonly submitLimiter: SlidingWindowLimiter;
  readonly queryLimiter: SlidingWindowLimiter;
  readonly faults: FaultQueue;
  readonly plans: TaskPlan[];
  readonly counts: EmulatorCounts;
  /** Requests received per operation, whatever their answer. */
  readonly calls: Record<EmulatorOp, number>;
  /** Accepted submits since creation or the last reset. */
  readonly created: { tasks: number };
  readonly signer: ResultUrlSigner;
  readonly images: ImageCache;
  /** Malformed lines of the state file skipped on start. */
  readonly skippedJournalLines: number;
}

/** Applies the defaults and refuses settings that would make the emulator meaningless. */
export function resolveOptions(options: EmulatorOptions): ResolvedOptions {
  const config: ResolvedOptions = {
    clock: options.clock ?? systemClock,
    apiKey: options.apiKey ?? 'sk-local-emulator',
    speed: options.speed ?? 1,
    submitsPerSecond: options.submitsPerSecond ?? 2,
    queriesPerSecond: options.queriesPerSecond ?? 20,
    resultTtlMs: options.resultTtlMs ?? DAY_MS,
    publicOrigin: options.publicOrigin,
    stateFile: options.stateFile,
  };
  for (const key of ['speed', 'submitsPerSecond', 'queriesPerSecond', 'resultTtlMs'] as const) {
    if (!(config[key] > 0)) throw new RangeError(`${key} must be a positive number, got ${config[key]}`);
  }
  if (config.apiKey === '') throw new RangeError('apiKey must not be empty');
  if (config.stateFile === '') throw new RangeError('stateFile must not be empty (leave it out instead)');
  return config;
}

/** Fresh state for the given options, with the tasks of the state file if there is one. */
export function createContext(options: EmulatorOptions): EmulatorContext {
  const config = resolveOptions(options);
  const account = new Account(config.resultTtlMs);
  const journal = config.stateFile
    ? openTaskJournal(config.stateFile, account, config.clock.now())
    : { skippedLines: 0 };
  return {
    config,
    account,
    submitLimiter: new SlidingWindowLimiter(config.submitsPerSecond),
    queryLimiter: new SlidingWindowLimiter(config.queriesPerSecond),
    faults: new FaultQueue(),
    plans: [],
    counts: { submits: 0, queries: 0, throttled: 0 },
    calls: noCalls(),
    created: { tasks: 0 },
    signer: new ResultUrlSigner(),
    images: new ImageCache(),
    skippedJournalLines: journal.skippedLines,
  };
}

/** The current time of the emulator's clock, with every task brought up to it. */
export function settledNow(context: EmulatorContext): number {
  const now = context.config.clock.now();
  context.account.settle(now);
  return now;
}

/** The test-side handle on `context`. */
export function createControl(context: EmulatorContext): EmulatorControl {
  return {
    planNextTask(plan) {
      context.plans.push(checkPlan(plan));
    },
    injectFault(op, fault, times = 1) {
      context.faults.add(op, fault, times);
    },
    cancelTask(taskId) {
      return context.account.cancel(taskId, settledNow(context));
    },
    forgetTask(taskId) {
      return context.account.forget(taskId, settledNow(context));
    },
    tasks() {
      const now = settledNow(context);
      return context.account.all().map((record) => snapshotAt(record, now));
    },
    get counts() {
      return { ...context.counts };
    },
    get calls() {
      return { ...context.calls };
    },
    get tasksCreated() {
      return context.created.tasks;
    },
    get skippedJournalLines() {
      return context.skippedJournalLines;
    },
    reset() {
      context.account.clear();
      context.plans.length = 0;
      context.faults.clear();
      context.images.clear();
      context.submitLimiter.reset();
      context.queryLimiter.reset();
      Object.assign(context.counts, { submits: 0, queries: 0, throttled: 0 });
      Object.assign(context.calls, noCalls());
      context.created.tasks = 0;
    },
  };
}

function noCalls(): Record<EmulatorOp, number> {
  return { submit: 0, get: 0, cancel: 0, list: 0, download: 0 };
}
