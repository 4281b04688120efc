import { pollGeneration } from '../../functions/poll/poll.js';
import type { Lane } from '../../functions/shared/admission.js';
import { batchLineId } from '../../functions/shared/batch.js';
import type { Clock } from '../../functions/shared/clock.js';
import type { DashScopeClient } from '../../functions/shared/dashscope/client.js';
import { DashScopeThrottledError } from '../../functions/shared/errors.js';
import {
  type GenerationRequest,
  generationRequestSchema,
} from '../../functions/shared/generation-request.js';
import { silentLogger } from '../../functions/shared/logger.js';
import type { PollPolicy } from '../../functions/shared/poll-policy.js';
import { batchCompletionMs, typicalRunSeconds } from '../../functions/shared/queue-estimate.js';
import {
  DEFAULT_RUN_TIME_MODEL,
  estimateRun,
  type RunTimeModel,
} from '../../functions/shared/run-time-estimate.js';
import type { TaskState } from '../../functions/shared/workflow-state.js';
import { submitGeneration } from '../../functions/submit/submit.js';
import { Random, seedOf } from '../lib/random.js';
import { FULL_VCPU_MB } from '../memory-model.js';
import { ALL_IN_ASSUMPTIONS, batchGetReadUnits } from './all-in.js';
import { DEFAULT_TRUTH, drawRunMs, peakPerSecond, SimAccount, type Truth } from './dashscope.js';
import {
  ADMISSION_SETTINGS,
  accountLimits,
  DISPATCHER_ASSUMPTIONS,
  QUEUE_UNITS,
  SimDispatcher,
} from './dispatcher.js';
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

/** From an execution's end to the reconciler's handling of its status-change event (EventBridge's delivery; assumed). */
const RECONCILER_EVENT_MS = 1000;

/** How much longer CPU work takes at `memoryMb` than at one vCPU (Lambda: 1,769 MB = 1 vCPU). */
export function cpuScale(memoryMb: number): number {
  return Math.max(1, FULL_VCPU_MB / memoryMb);
}

/** One account's peaks over a trial. */
export interface AccountPeaks {
  readonly name: string;
  readonly peakQueriesPerSecond: number;
  readonly peakSubmitsPerSecond: number;
  /** The most tasks PENDING or RUNNING there at once. */
  readonly peakOutstandingTasks: number;
}

/** How far a batch client's reads of `estimatedCompletionAt` were from the batch's end. */
export interface BatchEta {
  /** At 10 %, 50 % and 90 % of its run ({@link ETA_READ_AT}): |estimate − end| / time left then. */
  readonly at: readonly number[];
  /** The worst of every read (once a minute) from 10 % to 90 % of its run. */
  readonly worstFrom10To90: number;
  /** The client's reads while it ran. */
  readonly reads: number;
}

/** One batch of a trial: its lines, and from its first request to its last image stored. */
export interface BatchResult {
  readonly name: string;
  readonly lines: number;
  readonly makespanSeconds: number;
  /** Its executions that did not succeed. */
  readonly failed: number;
  /** Its completion estimate as its client read it once a minute (with admission). */
  readonly eta?: BatchEta;
}

/** What one trial of one workload under one policy produced. */
export interface TrialResult {
  readonly jobs: number;
  readonly failed: number;
  /** Seconds from each task's end at DashScope to its execution's poll seeing it. */
  readonly lags: number[];
  /**
   * Seconds from each task's start at DashScope (RUNNING) to the end of the Poll invocation that
   * first reports it running or ended: when the generations index shows it.
   */
  readonly startLags: number[];
  /** Task queries made by the Poll function, throttled attempts included. */
  readonly polls: number;
  /** Every task-API call: the polls, the queue listings and Persist's query. */
  readonly queries: number;
  /** The highest of the accounts' peaks (task-API calls in any 1-second window). */
  readonly peakQueriesPerSecond: number;
  /** Each account's peaks in any 1-second window: task-API calls, and submits (refused ones included). */
  readonly accounts: readonly AccountPeaks[];
  /** 429s: to task-API calls, and to submits. */
  readonly throttled: number;
  readonly submitsThrottled: number;
  readonly transitions: number;
  readonly maxHistoryEvents: number;
  /** Admit, Submit and Poll Lambda GB-s and invocations (Persist's cost is the same under every policy). */
  readonly lambdaGbSeconds: number;
  readonly lambdaRequests: number;
  /** The dispatcher Lambda: invocations (kicks and sweeps) and GB-s. */
  readonly dispatcherInvocations: number;
  readonly dispatcherGbSeconds: number;
  /**
   * DynamoDB request units on the admission queue's items (entries, slots, the counters, the
   * lease, the accounts' recent tasks): Admit's, Submit's, Poll's, Notify's, the reconciler's and
   * the dispatcher's, as `QUEUE_UNITS` counts each operation.
   */
  readonly queueWriteUnits: number;
  readonly queueReadUnits: number;
  /** Seconds from the first execution's start to the last image stored (Persist done). */
  readonly makespanSeconds: number;
  /** Seconds from each request to its task RUNNING at DashScope, by lane, in the order of the jobs. */
  readonly startWaits: Readonly<Record<Lane, number[]>>;
  /** Poll invocations whose answer changed the generation's visible state (status or progress). */
  readonly visibleChanges: number;
  /** The client's GETs of each generation once admitted (`apiGetIntervalSeconds`), and one at its end. */
  readonly apiGets: number;
  /** A client that GETs each waiting generation (`apiGetIntervalQueuedSeconds`): its GETs while they wait. */
  readonly apiGetsQueued: number;
  /**
   * A client that lists its waiting generations instead, every `apiGetIntervalQueuedSeconds`, a
   * page of `apiListPageSize` at a time: its list requests, and the generations they showed.
   */
  readonly apiListPages: number;
  readonly apiListedChecks: number;
  /** Images requested. */
  readonly images: number;
  /** Each batch of the workload, in the order of its first job; none without batches. */
  readonly batches: readonly BatchResult[];
  /** Requests that created the jobs: a POST /v1/generations per job outside a batch, a POST /v1/batches per batch. */
  readonly apiCreates: number;
  /**
   * A client following each batch by `GET /v1/batches/{id}` once a minute (`apiBatchGetIntervalSeconds`),
   * until it reads it ended: its GETs, and the read units they cost as the batch's counts grow
   * (bench/poll-sim/all-in.ts, `batchGetReadUnits`).
   */
  readonly apiBatchGets: number;
  readonly apiBatchReadUnits: number;
}

interface Execution {
  readonly id: string;
  /** The batch it is a line of, by its name in the workload. */
  readonly batch?: string;
  readonly startMs: number;
  readonly taskId: string;
  readonly request: GenerationRequest;
  readonly runMs: number;
  readonly lane: Lane;
  /** The account the dispatcher granted it a slot on, and when its Admit state ended, once granted. */
  account?: SimAccount;
  accountName?: string;
  grantedMs?: number;
  /** Whether it holds a slot (granted, and Poll has not seen its task end). */
  holdsSlot: boolean;
  /** Whether Poll has recorded its task's start with the queue. */
  startRecorded: boolean;
  /** When Persist stored its images. */
  persistedMs?: number;
  state?: TaskState;
  transitions: number;
  events: number;
  polls: number;
  visibleChanges: number;
  retries: number;
  lag?: number;
  /** Seconds from its task's start to the end of the Poll invocation that first saw it started. */
  startLag?: number;
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
  /**
   * Whether jobs go through admission control. Without it (the workflow before #11), there is
   * no Admit state and every execution submits at once to the first account. @default true
   */
  readonly admission?: boolean;
}

/**
 * Runs one trial of `workload` with `policy`: each job through admission control (a simulated
 * dispatcher applying the real `planGrants`), then the real Submit and Poll code against the
 * simulated account it was granted.
 */
export async function simulateTrial(
  workload: Workload,
  trial: number,
  policy: PollPolicy,
  shape: WorkflowShape,
  scenario: Scenario = {},
): Promise<TrialResult> {
  const truth = scenario.truth ?? DEFAULT_TRUTH;
  const runTimes = new Random(seedOf(workload.name, trial, 'run-times'));
  // The submit path has its own stream, so the policies' different numbers of polls do not shift
  // the submits' latencies. The timelines still differ a little between policies: a slot is
  // freed, and the next job submitted, when Poll sees the task end.
  const submitNet = new Random(seedOf(workload.name, trial, 'submit'));
  const pollNet = new Random(seedOf(workload.name, trial, 'poll'));
  const limits = accountLimits(workload.accounts ?? 1);
  const accounts = new Map(limits.map((account) => [account.name, new SimAccount(truth)]));
  const queue = new EventQueue();
  let nowMs = 0;
  let lambdaMs = { admit: 0, submit: 0, poll: 0 };
  let lambdaRequests = 0;
  let queueWriteUnits = 0;
  let queueReadUnits = 0;

  const clock: Clock = { now: () => nowMs };
  const client = (net: Random, execution: Execution, memoryMb: number): DashScopeClient => {
    const account = execution.account as SimAccount;
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
      // A batch's generations are named after it, as the API and the trigger name them.
      id: job.batch
        ? batchLineId(`batch-${workload.name}-${trial}-${job.batch.name}`, job.batch.line)
        : `${workload.name}-${trial}-${index}`,
      ...(job.batch ? { batch: job.batch.name } : {}),
      startMs: (jobs[index]?.startSeconds ?? 0) * 1000,
      taskId: `task-${workload.name}-${trial}-${index}`,
      request,
      runMs: drawRunMs(request, runTimes, truth),
      lane: jobs[index]?.lane ?? 'batch',
      holdsSlot: false,
      startRecorded: false,
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
  const byId = new Map(executions.map((execution) => [execution.id, execution]));
  const { storeCallMs, awsCallMs } = DISPATCHER_ASSUMPTIONS;
  const dispatcher = new SimDispatcher(limits, {
    schedule: (atMs, run) =>
      queue.push(atMs, () => {
        run();
        yieldTurn();
      }),
    invokeMs: LATENCY_MS.invoke,
    // SendTaskSuccess: Admit ends, the states after it are entered, and Submit's Lambda runs.
    granted: (id, account, atMs) => {
      const execution = byId.get(id) as Execution;
      execution.account = accounts.get(account);
      execution.accountName = account;
      execution.grantedMs = atMs;
      execution.holdsSlot = true;
      const lambdaStartMs =
        atMs + (shape.before.length - shape.admit.index - 1) * LATENCY_MS.transition + LATENCY_MS.invoke;
      start('submit', execution, lambdaStartMs, lambdaStartMs + submitNet.uniform(...LATENCY_MS.oneWay));
    },
  });
  /** Frees the execution's slot (a store write) and kicks the dispatcher; returns when that is done. */
  const release = (execution: Execution, fromMs: number): number => {
    if (!execution.holdsSlot) return fromMs;
    execution.holdsSlot = false;
    dispatcher.release(execution.id);
    queueWriteUnits += QUEUE_UNITS.release.write;
    dispatcher.kick(fromMs + storeCallMs + awsCallMs);
    return fromMs + storeCallMs + awsCallMs;
  };
  let open = executions.length;
  const admission = scenario.admission ?? true;
  /**
   * The execution ended at `atMs` (Persist done, or failed): Notify releases its slot and rings the
   * dispatcher, and so does the reconciler on the execution's end (its status-change event, ~1 s
   * later); after Poll's release each is a Delete of nothing, and a dispatcher invocation.
   */
  const ended = (atMs: number) => {
    if (!admission) return;
    const notifyMs =
      atMs + 2 * LATENCY_MS.transition + LATENCY_MS.invoke + ALL_IN_ASSUMPTIONS.notifySeconds * 1000;
    for (const releaseMs of [notifyMs, notifyMs + RECONCILER_EVENT_MS]) {
      queueWriteUnits += QUEUE_UNITS.releaseNothing.write;
      dispatcher.kick(releaseMs + storeCallMs + awsCallMs);
    }
  };
  /** The execution ends without images; its slot, if it holds one, is freed by the failure path. */
  const fail = (execution: Execution) => {
    execution.failed = true;
    open -= 1;
    release(execution, nowMs);
    ended(nowMs);
  };
  const before = admission ? shape.before : shape.before.filter((_, index) => index !== shape.admit.index);
  jobs.forEach((job, index) => {
    const execution = executions[index] as Execution;
    execution.transitions += sum(before, 'transitions');
    execution.events += EXECUTION_EVENTS + sum(before, 'events');
    if (!admission) {
      execution.account = accounts.get(limits[0]?.name ?? '');
      const lambdaStartMs =
        job.startSeconds * 1000 + before.length * LATENCY_MS.transition + LATENCY_MS.invoke;
      start('submit', execution, lambdaStartMs, lambdaStartMs + submitNet.uniform(...LATENCY_MS.oneWay));
      return;
    }
    // Admit's Lambda stores the entry (with the task token) and kicks the dispatcher; the
    // execution then waits for the token without transitions or history events.
    const admitStartMs =
      job.startSeconds * 1000 + (shape.admit.index + 1) * LATENCY_MS.transition + LATENCY_MS.invoke;
    const storedMs = admitStartMs + storeCallMs;
    queue.push(storedMs, () => {
      dispatcher.enqueue({
        id: execution.id,
        lane: execution.lane,
        enqueuedAt: storedMs,
        expectedRunSeconds: estimateRun(execution.request, scenario.runTimeModel).seconds,
      });
      dispatcher.kick(storedMs + awsCallMs);
      yieldTurn();
    });
    const admitEndMs = storedMs + awsCallMs + LATENCY_MS.cpu * cpuScale(shape.memoryMb.admit);
    lambdaMs.admit += Math.ceil(admitEndMs - admitStartMs);
    lambdaRequests += 1;
    queueWriteUnits += QUEUE_UNITS.enqueue.write;
    queueReadUnits += QUEUE_UNITS.enqueue.read;
  });
  if (admission) dispatcher.sweep(0, () => open > 0);

  // A client following each batch: GET /v1/batches/{id} once a minute from its POST until it
  // reads the batch ended, each read estimated by the API's own code over the simulated state.
  const batchClients = admission ? batchesByName(executions) : [];
  let apiBatchGets = 0;
  let apiBatchReadUnits = 0;
  const estimateSettings = { accounts: limits, batchEvery: ADMISSION_SETTINGS.rules.batchEvery };
  const typicalSeconds = typicalRunSeconds(scenario.runTimeModel ?? DEFAULT_RUN_TIME_MODEL);
  for (const client of batchClients) {
    const read = (atMs: number) =>
      queue.push(atMs, () => {
        const counts = batchCountsAt(client.lines, nowMs);
        apiBatchGets += 1;
        if (counts.open === 0) {
          // Ended: the batch's item alone (its counts are final).
          apiBatchReadUnits += ALL_IN_ASSUMPTIONS.rruBatchItem;
          yieldTurn();
          return;
        }
        apiBatchReadUnits += batchGetReadUnits(counts.keys);
        const estimateMs = batchCompletionMs(
          { now: nowMs, lanes: dispatcher.lanes(), state: dispatcher.state, settings: estimateSettings },
          {
            lane: client.lane,
            waiting: counts.waiting,
            running: counts.running,
            ended: counts.ended,
            typicalRunSeconds: typicalSeconds,
          },
        );
        client.reads.push({ atMs: nowMs, estimateMs });
        read(nowMs + ALL_IN_ASSUMPTIONS.apiBatchGetIntervalSeconds * 1000);
        yieldTurn();
      });
    read(client.firstMs);
  }

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
      fail(execution);
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
        if (admission && execution.accountName !== undefined) {
          // Submit reads its slot, notes the attempt and the task, and records the task for the account.
          queueReadUnits += QUEUE_UNITS.submit.read;
          queueWriteUnits += QUEUE_UNITS.submit.write + dispatcher.recordTask(execution.accountName, nowMs);
        }
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
      // Poll records the task's start for the estimates, and frees the slot once the task has ended.
      if (next.times.scheduled !== undefined && execution.holdsSlot && !execution.startRecorded) {
        execution.startRecorded = true;
        dispatcher.started(execution.id, Date.parse(next.times.scheduled));
        queueWriteUnits += QUEUE_UNITS.start.write;
        nowMs += storeCallMs;
      }
      if (next.status !== 'queued' && next.status !== 'running') nowMs = release(execution, nowMs);
      const pollEndMs = lambdaEnded(event, 'poll');
      if (execution.startLag === undefined && next.status !== 'queued') {
        const task = (execution.account as SimAccount).task(execution.taskId);
        execution.startLag = Math.max(0, pollEndMs - task.startMs) / 1000;
      }
      const choiceEndMs = pollEndMs + LATENCY_MS.transition;
      if (visiblyChanged(execution.state as TaskState, next)) execution.visibleChanges += 1;
      execution.state = next;
      execution.retries = 0;
      if (next.status === 'succeeded') {
        const task = (execution.account as SimAccount).task(execution.taskId);
        execution.lag = (execution.lastAnswerMs - task.endMs) / 1000;
        execution.transitions += sum(shape.after, 'transitions');
        execution.events += sum(shape.after, 'events');
        const lambdaStartMs = choiceEndMs + LATENCY_MS.transition + LATENCY_MS.invoke;
        start('persist', execution, lambdaStartMs, lambdaStartMs + pollNet.uniform(...LATENCY_MS.oneWay));
      } else if (next.deadlineExceeded || (next.status !== 'queued' && next.status !== 'running')) {
        fail(execution);
      } else if (next.pollCount >= shape.maxPolls) {
        fail(execution);
      } else {
        loop(execution, choiceEndMs);
      }
    } else {
      // Persist asks DashScope for the task once more (fresh result URLs), then stores the images.
      try {
        await client(pollNet, execution, shape.memoryMb.poll).getTask(execution.taskId);
        execution.retries = 0;
        execution.persistedMs = Math.max(
          nowMs,
          event.lambdaStartMs + ALL_IN_ASSUMPTIONS.persistSeconds * 1000,
        );
        open -= 1;
        ended(execution.persistedMs);
      } catch (error) {
        if (!(error instanceof DashScopeThrottledError)) throw error;
        retryOrFail(event, shape.retry.persist, lambdaEnded(event, undefined), pollNet);
      }
    }
  }

  for (let event = queue.pop(); event; event = queue.pop()) {
    nowMs = event.atMs;
    if (nowMs > DRAIN_LIMIT_MS)
      throw new Error(`${workload.name}: the queue did not drain in 30 simulated days`);
    await new Promise<void>((turnOver) => {
      yieldTurn = turnOver;
      event.run();
    });
    if (crashed) throw crashed.error;
  }

  const lags = executions.flatMap((execution) =>
    execution.lag === undefined || execution.failed ? [] : [execution.lag],
  );
  const startLags = executions.flatMap((execution) =>
    execution.startLag === undefined || execution.failed ? [] : [execution.startLag],
  );
  const simAccounts = [...accounts.entries()];
  const peaks = simAccounts.map(([name, account]) => ({
    name,
    peakQueriesPerSecond: peakPerSecond(account.queryAttempts),
    peakSubmitsPerSecond: peakPerSecond(account.submitAttempts),
    peakOutstandingTasks: peakOutstanding(account),
  }));
  const persisted = executions.flatMap((execution) =>
    execution.persistedMs === undefined ? [] : [execution.persistedMs],
  );
  const firstStartMs = Math.min(...executions.map((execution) => execution.startMs));
  return {
    jobs: executions.length,
    failed: executions.filter((execution) => execution.failed).length,
    lags,
    startLags,
    polls: executions.reduce((total, execution) => total + execution.polls, 0),
    queries: simAccounts.reduce((total, [, account]) => total + account.queryAttempts.length, 0),
    peakQueriesPerSecond: Math.max(...peaks.map((peak) => peak.peakQueriesPerSecond)),
    accounts: peaks,
    throttled: simAccounts.reduce((total, [, account]) => total + account.throttled, 0),
    submitsThrottled: simAccounts.reduce((total, [, account]) => total + account.submitsThrottled, 0),
    transitions: executions.reduce((total, execution) => total + execution.transitions, 0),
    maxHistoryEvents: Math.max(...executions.map((execution) => execution.events)),
    lambdaGbSeconds:
      (lambdaMs.admit * shape.memoryMb.admit +
        lambdaMs.submit * shape.memoryMb.submit +
        lambdaMs.poll * shape.memoryMb.poll) /
      1024 /
      1000,
    lambdaRequests,
    dispatcherInvocations: dispatcher.invocations,
    dispatcherGbSeconds: (dispatcher.billedMs * shape.memoryMb.dispatch) / 1024 / 1000,
    queueWriteUnits: queueWriteUnits + dispatcher.writeUnits,
    queueReadUnits: queueReadUnits + dispatcher.readUnits,
    makespanSeconds: persisted.length === 0 ? 0 : (Math.max(...persisted) - firstStartMs) / 1000,
    startWaits: {
      interactive: startWaits(executions, 'interactive'),
      batch: startWaits(executions, 'batch'),
    },
    visibleChanges: executions.reduce((total, execution) => total + execution.visibleChanges, 0),
    apiGets: executions.reduce((total, execution) => total + apiGets(execution), 0),
    apiGetsQueued: executions.reduce((total, execution) => total + apiGetsQueued(execution), 0),
    ...apiLists(executions),
    images: executions.reduce((total, execution) => total + execution.request.n, 0),
    batches: batchesOf(executions, batchClients),
    apiCreates: executions.filter((execution) => execution.batch === undefined).length + batchClients.length,
    apiBatchGets,
    apiBatchReadUnits,
  };
}

/** A batch and what its client read: when, and the completion the API estimated then. */
interface BatchClient {
  readonly name: string;
  readonly lane: Lane;
  readonly lines: readonly Execution[];
  /** When its first line was requested: the client's POST, and its first read. */
  readonly firstMs: number;
  readonly reads: { readonly atMs: number; readonly estimateMs: number | undefined }[];
}

function batchesByName(executions: readonly Execution[]): BatchClient[] {
  const byBatch = new Map<string, Execution[]>();
  for (const execution of executions) {
    if (execution.batch === undefined) continue;
    byBatch.set(execution.batch, [...(byBatch.get(execution.batch) ?? []), execution]);
  }
  return [...byBatch].map(([name, lines]) => ({
    name,
    lane: lines[0]?.lane ?? 'batch',
    lines,
    firstMs: Math.min(...lines.map((execution) => execution.startMs)),
    reads: [],
  }));
}

/**
 * A batch's counts at `atMs` as the API reads them: `waiting` (not seen running yet, registered or
 * not), `running`, and the keys in each of its `byBatch` partitions (waiting, running, succeeded,
 * partial, failed, canceled: registered lines only) that its GET's COUNT queries read.
 */
function batchCountsAt(lines: readonly Execution[], atMs: number) {
  let waiting = 0;
  let running = 0;
  let registeredWaiting = 0;
  let succeeded = 0;
  let failed = 0;
  for (const line of lines) {
    const registered = line.startMs <= atMs;
    if (line.failed) failed += 1;
    else if (line.persistedMs !== undefined && line.persistedMs <= atMs) succeeded += 1;
    else if (line.state && line.state.status !== 'queued') running += 1;
    else {
      waiting += 1;
      if (registered) registeredWaiting += 1;
    }
  }
  return {
    waiting,
    running,
    ended: succeeded + failed,
    open: waiting + running,
    keys: [registeredWaiting, running, succeeded, 0, failed, 0],
  };
}

/**
 * Each batch's lines, makespan (its first request to its last image stored) and failures; and how
 * far its client's reads of `estimatedCompletionAt` were from that end.
 */
function batchesOf(executions: readonly Execution[], clients: readonly BatchClient[]): BatchResult[] {
  const readsOf = new Map(clients.map((client) => [client.name, client.reads]));
  return batchesByName(executions).map(({ name, lines, firstMs }) => {
    const lastMs = Math.max(...lines.map((execution) => execution.persistedMs ?? firstMs));
    const eta = etaErrors(readsOf.get(name) ?? [], firstMs, lastMs);
    return {
      name,
      lines: lines.length,
      makespanSeconds: (lastMs - firstMs) / 1000,
      failed: lines.filter((execution) => execution.failed).length,
      ...(eta ? { eta } : {}),
    };
  });
}

/** The fractions of a batch's run at which its completion estimate is judged. */
export const ETA_READ_AT = [0.1, 0.5, 0.9] as const;

/**
 * The error of each read of a batch's completion, as a fraction of the time left then:
 * |estimate − end| / (end − read). At each of {@link ETA_READ_AT}, the client's last read at or
 * before that point of the run; and the worst of every read from 10 % to 90 % of it.
 */
function etaErrors(
  reads: readonly { readonly atMs: number; readonly estimateMs: number | undefined }[],
  firstMs: number,
  endMs: number,
): BatchEta | undefined {
  const errorOf = (read: { atMs: number; estimateMs: number | undefined }) =>
    read.estimateMs === undefined || endMs <= read.atMs
      ? Number.NaN
      : Math.abs(read.estimateMs - endMs) / (endMs - read.atMs);
  const spanMs = endMs - firstMs;
  if (reads.length === 0 || spanMs <= 0) return undefined;
  const at = ETA_READ_AT.map((fraction) => {
    const mark = firstMs + fraction * spanMs;
    const read = reads.filter((each) => each.atMs <= mark).at(-1);
    return read ? errorOf(read) : Number.NaN;
  });
  const within = reads.filter(
    (read) => read.atMs >= firstMs + 0.1 * spanMs && read.atMs <= firstMs + 0.9 * spanMs,
  );
  return { at, worstFrom10To90: Math.max(...within.map(errorOf)), reads: reads.length };
}

/** Seconds from each request of `lane` to its task RUNNING, for those that reached DashScope. */
function startWaits(executions: readonly Execution[], lane: Lane): number[] {
  return executions.flatMap((execution) =>
    execution.lane === lane && execution.account && execution.state
      ? [(execution.account.task(execution.taskId).startMs - execution.startMs) / 1000]
      : [],
  );
}

/** The GETs of a client following the generation once admitted (see `ALL_IN_ASSUMPTIONS`), and one at its end. */
function apiGets(execution: Execution): number {
  const grantedMs = execution.grantedMs ?? execution.lastAnswerMs;
  const admittedSeconds = Math.max(0, execution.lastAnswerMs - grantedMs) / 1000;
  return Math.ceil(admittedSeconds / ALL_IN_ASSUMPTIONS.apiGetIntervalSeconds) + 1;
}

/** The GETs of a client that follows each waiting generation with its own GET, once a minute. */
function apiGetsQueued(execution: Execution): number {
  const grantedMs = execution.grantedMs ?? execution.lastAnswerMs;
  const queuedSeconds = Math.max(0, grantedMs - execution.startMs) / 1000;
  return Math.ceil(queuedSeconds / ALL_IN_ASSUMPTIONS.apiGetIntervalQueuedSeconds);
}

/**
 * A client that lists its waiting generations once a minute from the first start
 * (`GET /v1/generations?status=queued`, each with its place), `apiListPageSize` a page: the pages
 * it reads, and the generations they show (each checked once a minute, as by its own GET).
 */
function apiLists(executions: readonly Execution[]): { apiListPages: number; apiListedChecks: number } {
  const intervalMs = ALL_IN_ASSUMPTIONS.apiGetIntervalQueuedSeconds * 1000;
  const spans = executions.map((execution) => ({
    from: execution.startMs,
    until: execution.grantedMs ?? execution.lastAnswerMs,
  }));
  const first = Math.min(...spans.map((span) => span.from));
  const last = Math.max(...spans.map((span) => span.until));
  let pages = 0;
  let checks = 0;
  for (let at = first; at < last; at += intervalMs) {
    const waiting = spans.filter((span) => span.from <= at && at < span.until).length;
    pages += Math.ceil(waiting / ALL_IN_ASSUMPTIONS.apiListPageSize);
    checks += waiting;
  }
  return { apiListPages: pages, apiListedChecks: checks };
}

/** The most tasks of `account` created and not yet ended at any one moment. */
function peakOutstanding(account: SimAccount): number {
  // An end sorts before a creation at the same ms: that task is no longer outstanding.
  const changes = account.tasks
    .flatMap((task) => [
      { ms: task.createdMs, delta: 1 },
      { ms: task.endMs, delta: -1 },
    ])
    .sort((a, b) => a.ms - b.ms || a.delta - b.delta);
  let outstanding = 0;
  let peak = 0;
  for (const change of changes) {
    outstanding += change.delta;
    peak = Math.max(peak, outstanding);
  }
  return peak;
}

/** Simulated time after which a trial is taken to be stuck (a slot never freed would sweep forever). */
const DRAIN_LIMIT_MS = 30 * 24 * 3600 * 1000;

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
