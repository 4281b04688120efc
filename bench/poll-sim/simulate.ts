import { pollGeneration } from '../../functions/poll/poll.js';
import type { Clock } from '../../functions/shared/clock.js';
import type { DashScopeClient } from '../../functions/shared/dashscope/client.js';
import { DashScopeThrottledError } from '../../functions/shared/errors.js';
import {
  type GenerationRequest,
  generationRequestSchema,
} from '../../functions/shared/generation-request.js';
import { silentLogger } from '../../functions/shared/logger.js';
import type { PollPolicy } from '../../functions/shared/poll-policy.js';
import type { RunTimeModel } from '../../functions/shared/run-time-estimate.js';
import type { TaskState } from '../../functions/shared/workflow-state.js';
import { submitGeneration } from '../../functions/submit/submit.js';
import { Random, seedOf } from '../lib/random.js';
import { FULL_VCPU_MB } from '../memory-model.js';
import { ALL_IN_ASSUMPTIONS } from './all-in.js';
import { DEFAULT_TRUTH, drawRunMs, peakPerSecond, SimAccount, type Truth } from './dashscope.js';
import { EVENTS_PER_RETRY, EXECUTION_EVENTS, type RetryRule, type WorkflowShape } from './workflow-shape.js';
import type { Workload } from './workloads.js';

/**
 * Latencies the simulation assumes, in ms. They are not measured: they are the order of what a
 * Standard workflow, a warm Lambda and a region near DashScope's Beijing endpoint give, and they
 * matter because they add to every loop (a 1 s Wait makes a ~1.1 s poll period).
 */
export const LATENCY_MS = {
  /** Step Functions entering the next state. */
  transition: 20,
  /** Step Functions invoking a warm Lambda until the handler runs. */
  invoke: 25,
  /** One way between the Lambda and DashScope, uniform in this range. */
  oneWay: [30, 60] as const,
  /**
   * A handler's own CPU time per invocation and per DashScope call (parsing, the policy, logging)
   * at one full vCPU, as `bench:memory` measures it (~2–3 ms); at a function's memory it takes
   * longer, by {@link cpuScale}.
   */
  cpu: 3,
};

/** How much longer CPU work takes at `memoryMb` than at one vCPU (Lambda: 1,769 MB = 1 vCPU). */
export function cpuScale(memoryMb: number): number {
  return Math.max(1, FULL_VCPU_MB / memoryMb);
}

/** What one trial of one workload under one policy produced. */
export interface TrialResult {
  readonly jobs: number;
  readonly failed: number;
  /** Seconds from each task's end at DashScope to its execution's poll seeing it. */
  readonly lags: number[];
  /** Task queries made by the Poll function, throttled attempts included. */
  readonly polls: number;
  /** Every task-API call: the polls, the queue listings and Persist's query. */
  readonly queries: number;
  readonly peakQueriesPerSecond: number;
  readonly throttled: number;
  readonly transitions: number;
  readonly maxHistoryEvents: number;
  /** Submit and Poll Lambda GB-s and invocations (Persist's cost is the same under every policy). */
  readonly lambdaGbSeconds: number;
  readonly lambdaRequests: number;
  /** Poll invocations whose answer changed the generation's visible state (status or progress). */
  readonly visibleChanges: number;
  /** GETs by clients that follow each generation every `apiGetIntervalSeconds` until it ends, then once more. */
  readonly apiGets: number;
  /** Images requested. */
  readonly images: number;
}

interface Execution {
  readonly id: string;
  readonly startMs: number;
  readonly taskId: string;
  readonly request: GenerationRequest;
  readonly runMs: number;
  state?: TaskState;
  transitions: number;
  events: number;
  polls: number;
  visibleChanges: number;
  retries: number;
  lag?: number;
  /** When DashScope last answered this execution's task query. */
  lastAnswerMs: number;
  failed: boolean;
}

type Step = 'submit' | 'poll' | 'persist';

/** A Task state's Lambda invocation, due to reach DashScope at `atMs`. */
interface Invocation {
  readonly step: Step;
  readonly execution: Execution;
  /** When the Lambda began (for its billed duration). */
  readonly lambdaStartMs: number;
}

interface SimEvent {
  readonly atMs: number;
  readonly seq: number;
  /** Starts an invocation, or resumes one that slept; returns once it has ended or sleeps again. */
  readonly run: () => void;
}

/** What a trial may change from the defaults (the sensitivity runs). */
export interface Scenario {
  /** How DashScope really runs. @default DEFAULT_TRUTH */
  readonly truth?: Truth;
  /** The run-time model Submit is configured with. @default DEFAULT_RUN_TIME_MODEL */
  readonly runTimeModel?: RunTimeModel;
}

/** Runs one trial of `workload` with `policy`, the real Submit and Poll code, against the simulated account. */
export async function simulateTrial(
  workload: Workload,
  trial: number,
  policy: PollPolicy,
  shape: WorkflowShape,
  scenario: Scenario = {},
): Promise<TrialResult> {
  const truth = scenario.truth ?? DEFAULT_TRUTH;
  const runTimes = new Random(seedOf(workload.name, trial, 'run-times'));
  // The submit path does not depend on the policy: its own stream keeps DashScope's schedule the
  // same for every policy, so they are compared on identical task timelines.
  const submitNet = new Random(seedOf(workload.name, trial, 'submit'));
  const pollNet = new Random(seedOf(workload.name, trial, 'poll'));
  const account = new SimAccount(truth);
  const queue = new EventQueue();
  let nowMs = 0;
  let lambdaMs = { submit: 0, poll: 0 };
  let lambdaRequests = 0;

  const clock: Clock = { now: () => nowMs };
  const client = (net: Random, execution: Execution, memoryMb: number): DashScopeClient => {
    const roundTrip = <T>(call: () => T): T => {
      try {
        return call();
      } finally {
        nowMs += net.uniform(...LATENCY_MS.oneWay) + LATENCY_MS.cpu * cpuScale(memoryMb);
      }
    };
    return {
      submit: async () =>
        roundTrip(() => account.submit(execution.taskId, execution.request, execution.runMs, nowMs)),
      getTask: async (taskId) =>
        roundTrip(() => {
          const answer = account.getTask(taskId, nowMs);
          execution.lastAnswerMs = nowMs;
          return answer;
        }),
      listTasks: async (query) => {
        nowMs += net.uniform(...LATENCY_MS.oneWay);
        return roundTrip(() => account.listTasks(query, nowMs));
      },
      cancel: async () => {
        throw new Error('the simulation never cancels');
      },
    };
  };

  const jobs = workload.jobs(trial);
  const executions = jobs.map((job, index): Execution => {
    const request = generationRequestSchema.parse(job.request);
    return {
      id: `${workload.name}-${trial}-${index}`,
      startMs: (jobs[index]?.startSeconds ?? 0) * 1000,
      taskId: `task-${workload.name}-${trial}-${index}`,
      request,
      runMs: drawRunMs(request, runTimes, truth),
      transitions: 0,
      events: 0,
      polls: 0,
      visibleChanges: 0,
      retries: 0,
      lastAnswerMs: 0,
      failed: false,
    };
  });

  // Invocations run one at a time, in virtual time: an invocation that sleeps (Poll's tail
  // polling) hands the turn back to the event loop below until its wake-up event comes.
  let yieldTurn: () => void = () => {};
  let crashed: { error: unknown } | undefined;
  const sleep = (ms: number): Promise<void> =>
    new Promise<void>((resume) => {
      queue.push(nowMs + Math.max(0, ms), resume);
      yieldTurn();
    });
  const start = (step: Step, execution: Execution, lambdaStartMs: number, atMs: number) =>
    queue.push(atMs, () => {
      invoke({ step, execution, lambdaStartMs }).then(
        () => yieldTurn(),
        (error: unknown) => {
          crashed = { error };
          yieldTurn();
        },
      );
    });
  jobs.forEach((job, index) => {
    const execution = executions[index] as Execution;
    execution.transitions += sum(shape.before, 'transitions');
    execution.events += EXECUTION_EVENTS + sum(shape.before, 'events');
    const lambdaStartMs =
      job.startSeconds * 1000 + shape.before.length * LATENCY_MS.transition + LATENCY_MS.invoke;
    start('submit', execution, lambdaStartMs, lambdaStartMs + submitNet.uniform(...LATENCY_MS.oneWay));
  });

  /** The Lambda of `event` ended at `nowMs`: bill it, and return when its Task state ends. */
  const lambdaEnded = (event: Invocation, fn: 'submit' | 'poll' | undefined): number => {
    const memoryMb = fn ? shape.memoryMb[fn] : shape.memoryMb.poll;
    const endMs = nowMs + LATENCY_MS.cpu * cpuScale(memoryMb);
    if (fn) lambdaMs = { ...lambdaMs, [fn]: lambdaMs[fn] + Math.ceil(endMs - event.lambdaStartMs) };
    if (fn) lambdaRequests += 1;
    return endMs;
  };
  /** A throttled call: retry as the Task's Retry rule says, or fail the execution. */
  const retryOrFail = (event: Invocation, rule: RetryRule, endMs: number, net: Random) => {
    const execution = event.execution;
    execution.retries += 1;
    const delayMs = retryDelayMs(rule, execution.retries, net);
    if (delayMs === undefined) {
      execution.failed = true;
      return;
    }
    execution.transitions += 1;
    execution.events += EVENTS_PER_RETRY;
    const lambdaStartMs = endMs + delayMs + LATENCY_MS.invoke;
    start(event.step, execution, lambdaStartMs, lambdaStartMs + net.uniform(...LATENCY_MS.oneWay));
  };
  /** From the end of Submit or of a Check: enter Wait, sleep, enter Poll. */
  const loop = (execution: Execution, fromMs: number) => {
    const state = execution.state as TaskState;
    execution.transitions += sum(shape.loop, 'transitions');
    execution.events += sum(shape.loop, 'events');
    const waitEndMs = fromMs + LATENCY_MS.transition + state.nextPollSeconds * 1000;
    const lambdaStartMs = waitEndMs + LATENCY_MS.transition + LATENCY_MS.invoke;
    start('poll', execution, lambdaStartMs, lambdaStartMs + pollNet.uniform(...LATENCY_MS.oneWay));
  };

  /** One invocation of Submit, Poll or Persist, and what the workflow does with its outcome. */
  async function invoke(event: Invocation): Promise<void> {
    const execution = event.execution;
    if (event.step === 'submit') {
      try {
        execution.state = await submitGeneration(
          { id: execution.id, request: execution.request },
          {
            dashscope: client(submitNet, execution, shape.memoryMb.submit),
            clock,
            logger: silentLogger,
            deadlineSeconds: shape.deadlineSeconds,
            randomSeed: () => 42,
            runTimeModel: scenario.runTimeModel,
            policy,
          },
        );
        execution.retries = 0;
        loop(execution, lambdaEnded(event, 'submit'));
      } catch (error) {
        if (!(error instanceof DashScopeThrottledError)) throw error;
        retryOrFail(event, shape.retry.submit, lambdaEnded(event, 'submit'), submitNet);
      }
    } else if (event.step === 'poll') {
      execution.polls += 1;
      let next: TaskState;
      try {
        next = await pollGeneration(
          { id: execution.id, request: execution.request, task: execution.state as TaskState },
          {
            dashscope: client(pollNet, execution, shape.memoryMb.poll),
            clock,
            sleep,
            logger: silentLogger,
            policy,
          },
        );
      } catch (error) {
        if (!(error instanceof DashScopeThrottledError)) throw error;
        retryOrFail(event, shape.retry.poll, lambdaEnded(event, 'poll'), pollNet);
        return;
      }
      const choiceEndMs = lambdaEnded(event, 'poll') + LATENCY_MS.transition;
      if (visiblyChanged(execution.state as TaskState, next)) execution.visibleChanges += 1;
      execution.state = next;
      execution.retries = 0;
      if (next.status === 'succeeded') {
        execution.lag = (execution.lastAnswerMs - account.task(execution.taskId).endMs) / 1000;
        execution.transitions += sum(shape.after, 'transitions');
        execution.events += sum(shape.after, 'events');
        const lambdaStartMs = choiceEndMs + LATENCY_MS.transition + LATENCY_MS.invoke;
        start('persist', execution, lambdaStartMs, lambdaStartMs + pollNet.uniform(...LATENCY_MS.oneWay));
      } else if (next.deadlineExceeded || (next.status !== 'queued' && next.status !== 'running')) {
        execution.failed = true;
      } else if (next.pollCount >= shape.maxPolls) {
        execution.failed = true;
      } else {
        loop(execution, choiceEndMs);
      }
    } else {
      // Persist asks DashScope for the task once more (fresh result URLs), then stores the images.
      try {
        await client(pollNet, execution, shape.memoryMb.poll).getTask(execution.taskId);
        execution.retries = 0;
      } catch (error) {
        if (!(error instanceof DashScopeThrottledError)) throw error;
        retryOrFail(event, shape.retry.persist, lambdaEnded(event, undefined), pollNet);
      }
    }
  }

  for (let event = queue.pop(); event; event = queue.pop()) {
    nowMs = event.atMs;
    await new Promise<void>((turnOver) => {
      yieldTurn = turnOver;
      event.run();
    });
    if (crashed) throw crashed.error;
  }

  const lags = executions.flatMap((execution) =>
    execution.lag === undefined || execution.failed ? [] : [execution.lag],
  );
  return {
    jobs: executions.length,
    failed: executions.filter((execution) => execution.failed).length,
    lags,
    polls: executions.reduce((total, execution) => total + execution.polls, 0),
    queries: account.queryAttempts.length,
    peakQueriesPerSecond: peakPerSecond(account.queryAttempts),
    throttled: account.throttled,
    transitions: executions.reduce((total, execution) => total + execution.transitions, 0),
    maxHistoryEvents: Math.max(...executions.map((execution) => execution.events)),
    lambdaGbSeconds:
      (lambdaMs.submit * shape.memoryMb.submit + lambdaMs.poll * shape.memoryMb.poll) / 1024 / 1000,
    lambdaRequests,
    visibleChanges: executions.reduce((total, execution) => total + execution.visibleChanges, 0),
    apiGets: executions.reduce(
      (total, execution) =>
        total +
        Math.ceil(
          Math.max(0, execution.lastAnswerMs - execution.startMs) /
            1000 /
            ALL_IN_ASSUMPTIONS.apiGetIntervalSeconds,
        ) +
        1,
      0,
    ),
    images: executions.reduce((total, execution) => total + execution.request.n, 0),
  };
}

/** Whether a poll changed what a reader of the generation sees: its status or its progress. */
function visiblyChanged(before: TaskState, after: TaskState): boolean {
  return before.status !== after.status || JSON.stringify(before.progress) !== JSON.stringify(after.progress);
}

/** Step Functions' backoff: interval × rate^(attempt − 1), capped, then "full" jitter draws in [0, that). */
function retryDelayMs(rule: RetryRule, attempt: number, random: Random): number | undefined {
  if (attempt > rule.maxAttempts) return undefined;
  const backoff =
    Math.min(rule.intervalSeconds * rule.backoffRate ** (attempt - 1), rule.maxDelaySeconds) * 1000;
  return rule.fullJitter ? random.uniform(0, backoff) : backoff;
}

function sum(
  steps: readonly { transitions: number; events: number }[],
  key: 'transitions' | 'events',
): number {
  return steps.reduce((total, step) => total + step[key], 0);
}

/** A binary min-heap of events by time (ties in insertion order, so runs are repeatable). */
class EventQueue {
  readonly #heap: SimEvent[] = [];
  #seq = 0;

  push(atMs: number, run: () => void): void {
    const heap = this.#heap;
    heap.push({ atMs, seq: this.#seq++, run });
    for (let i = heap.length - 1; i > 0; ) {
      const parent = (i - 1) >> 1;
      if (!before(heap[i] as SimEvent, heap[parent] as SimEvent)) break;
      [heap[i], heap[parent]] = [heap[parent] as SimEvent, heap[i] as SimEvent];
      i = parent;
    }
  }

  pop(): SimEvent | undefined {
    const heap = this.#heap;
    const top = heap[0];
    const last = heap.pop();
    if (heap.length === 0 || last === undefined) return top;
    heap[0] = last;
    for (let i = 0; ; ) {
      const left = 2 * i + 1;
      const right = left + 1;
      let smallest = i;
      if (left < heap.length && before(heap[left] as SimEvent, heap[smallest] as SimEvent)) smallest = left;
      if (right < heap.length && before(heap[right] as SimEvent, heap[smallest] as SimEvent))
        smallest = right;
      if (smallest === i) break;
      [heap[i], heap[smallest]] = [heap[smallest] as SimEvent, heap[i] as SimEvent];
      i = smallest;
    }
    return top;
  }
}

function before(a: SimEvent, b: SimEvent): boolean {
  return a.atMs < b.atMs || (a.atMs === b.atMs && a.seq < b.seq);
}
