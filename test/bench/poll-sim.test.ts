import { beforeAll, describe, expect, it } from 'vitest';
import { Random } from '../../bench/lib/random.js';
import { DEFAULT_TRUTH, drawRunMs, peakPerSecond, WindowCounter } from '../../bench/poll-sim/dashscope.js';
import {
  ADMISSION_SETTINGS,
  accountLimits,
  QUEUE_UNITS,
  SimDispatcher,
} from '../../bench/poll-sim/dispatcher.js';
import { fixedPolicy, sdkPolicy } from '../../bench/poll-sim/policies.js';
import { simulateTrial } from '../../bench/poll-sim/simulate.js';
import { synthesizeWorkflowShape, type WorkflowShape } from '../../bench/poll-sim/workflow-shape.js';
import { type Job, WORKLOADS, type Workload } from '../../bench/poll-sim/workloads.js';
import { singlesIn, waitingIn } from '../../functions/shared/admission.js';
import { generationRequestSchema } from '../../functions/shared/generation-request.js';
import { adaptivePollPolicy } from '../../functions/shared/poll-policy.js';
import { estimateRun } from '../../functions/shared/run-time-estimate.js';
import { runSynthesis } from '../support/run-synthesis.js';

/** The poll benchmark's simulation: it must count as Step Functions does, and stay repeatable. */
let shape: WorkflowShape;
const single = WORKLOADS.find((workload) => workload.name === 'single');
const mixed = WORKLOADS.find((workload) => workload.name === 'mixed');

beforeAll(() => {
  // The same synthesis as `synthesizeTemplate()` (cdk.json's context, no bundling), shared by the run.
  shape = synthesizeWorkflowShape(runSynthesis().template);
});

describe('the workflow shape, read from the synthesized state machine', () => {
  it('has a poll loop of Wait, Poll and Check status: 3 transitions and 9 history events', () => {
    expect(shape.loop.map((step) => step.name)).toEqual(['Wait', 'Poll', 'Check status']);
    expect(shape.loop.reduce((sum, step) => sum + step.transitions, 0)).toBe(3);
    expect(shape.loop.reduce((sum, step) => sum + step.events, 0)).toBe(9);
  });

  it('starts with Init, Admit and Submit and ends, on success, with Persist first', () => {
    expect(shape.before.map((step) => step.name)).toEqual(['Init', 'Admit', 'Submit']);
    expect(shape.after[0]?.name).toBe('Persist');
  });

  it('counts Admit as a Lambda Task: 1 transition and 5 history events', () => {
    expect(shape.before[shape.admit.index]).toMatchObject({ name: 'Admit', transitions: 1, events: 5 });
  });

  it('reads the deployed poll cap and the throttling retries', () => {
    expect(shape.maxPolls).toBe(1000);
    expect(shape.retry.poll).toMatchObject({ maxAttempts: 8, fullJitter: true });
  });
});

describe('simulateTrial', () => {
  it('is repeatable: the same trial gives the same numbers', async () => {
    const first = await simulateTrial(mixed!, 0, adaptivePollPolicy, shape);
    const second = await simulateTrial(mixed!, 0, adaptivePollPolicy, shape);

    expect(second).toEqual(first);
  });

  it('counts every poll loop and the fixed states of one execution', async () => {
    const result = await simulateTrial(single!, 0, fixedPolicy(5), shape);

    const fixed = [...shape.before, ...shape.after].reduce((sum, step) => sum + step.transitions, 0);
    expect(result.transitions).toBe(fixed + 3 * result.polls);
    const fixedEvents = [...shape.before, ...shape.after].reduce((sum, step) => sum + step.events, 0);
    expect(result.maxHistoryEvents).toBe(2 + fixedEvents + 9 * result.polls);
  });

  it('sees a task end only after it happened, within one poll period of a 5 s loop', async () => {
    const result = await simulateTrial(single!, 3, fixedPolicy(5), shape);

    expect(result.lags).toHaveLength(1);
    expect(result.lags[0]).toBeGreaterThanOrEqual(0);
    expect(result.lags[0]).toBeLessThan(5.5);
  });

  it('polls more often under the SDK schedule (1, 1, 2, 2, 2, 4, … s) than every 5 s', async () => {
    const fixed = await simulateTrial(single!, 0, fixedPolicy(5), shape);
    const sdk = await simulateTrial(single!, 0, sdkPolicy, shape);

    expect(sdk.polls).toBeGreaterThan(fixed.polls);
  });
});

describe('the simulated DashScope', () => {
  it('draws run times around the estimate, not equal to it', () => {
    const request = generationRequestSchema.parse({ prompt: 'x' });
    const random = new Random(1);
    const draws = Array.from({ length: 400 }, () => drawRunMs(request, random) / 1000);
    const mean = draws.reduce((sum, value) => sum + value, 0) / draws.length;

    const estimate = estimateRun(request).seconds;
    expect(mean / estimate).toBeCloseTo(DEFAULT_TRUTH.bias['stable-diffusion-3.5-large'] ?? 1, 1);
    expect(Math.min(...draws)).toBeLessThan(mean * 0.9);
    expect(Math.max(...draws)).toBeGreaterThan(mean * 1.1);
  });

  it('refuses the 21st call in any 1-second window, even told slightly out of order', () => {
    const counter = new WindowCounter(20);
    const accepted = [500, 100, 900, ...Array.from({ length: 17 }, (_, i) => 200 + i)].map((ms) =>
      counter.tryAcquire(ms),
    );

    expect(accepted.every(Boolean)).toBe(true);
    expect(counter.tryAcquire(950)).toBe(false);
    expect(counter.tryAcquire(1101)).toBe(true);
  });

  it('measures the peak of calls in any sliding second', () => {
    expect(peakPerSecond([0, 100, 999, 1000, 1500, 2600])).toBe(3);
  });
});

describe('tail polling in the simulation', () => {
  it('lets the adaptive Poll query more often than it is invoked', async () => {
    // Act
    const result = await simulateTrial(single!, 0, adaptivePollPolicy, shape);

    // Assess
    expect(result.queries).toBeGreaterThan(result.polls + 1);
  });

  it('sees the end of a single job within a second, in virtual time', async () => {
    // Act
    const result = await simulateTrial(single!, 1, adaptivePollPolicy, shape);

    // Assess
    expect(result.lags).toHaveLength(1);
    expect(result.lags[0]).toBeGreaterThanOrEqual(0);
    expect(result.lags[0]).toBeLessThan(1);
  });

  it('counts the polls that changed what a reader sees', async () => {
    // Act: queued → running → succeeded, at most one change per poll.
    const result = await simulateTrial(single!, 0, fixedPolicy(5), shape);

    // Assess
    expect(result.visibleChanges).toBeGreaterThanOrEqual(1);
    expect(result.visibleChanges).toBeLessThanOrEqual(result.polls);
  });
});

const REQUEST = { prompt: 'Eagle flying freely in the blue sky and white clouds' };
const burstOf = (count: number): Job[] =>
  Array.from({ length: count }, (_, i) => ({ startSeconds: i * 0.01, request: REQUEST }));
const workload = (name: string, jobs: Job[], accounts = 1): Workload => ({
  name,
  description: name,
  trials: 1,
  accounts,
  jobs: () => jobs,
});

describe('admission in the simulation', () => {
  it('loses no job of a 300-job burst on one account', async () => {
    // Act
    const result = await simulateTrial(workload('burst-300', burstOf(300)), 0, adaptivePollPolicy, shape);

    // Assess: without admission, the deadline cancelled ~43 % of such a burst.
    expect(result.failed).toBe(0);
    expect(result.throttled).toBe(0);
  });

  it('loses jobs of the same burst without admission, as the workflow before it did', async () => {
    // Act
    const result = await simulateTrial(workload('burst-300', burstOf(300)), 0, adaptivePollPolicy, shape, {
      admission: false,
    });

    // Assess: the 1 h deadline passes while tasks wait in DashScope's queue.
    expect(result.failed).toBeGreaterThan(0);
    expect(result.dispatcherInvocations).toBe(0);
  });

  it('keeps at most `depth` tasks outstanding and 2 submits in any second at the account', async () => {
    // Act
    const result = await simulateTrial(workload('burst-40', burstOf(40)), 0, fixedPolicy(5), shape);

    // Assess
    expect(result.accounts).toEqual([
      expect.objectContaining({
        peakOutstandingTasks: ADMISSION_SETTINGS.depth,
        peakSubmitsPerSecond: 2,
      }),
    ]);
  });

  it('starts an interactive request ahead of the batch jobs waiting before it', async () => {
    // Prepare: 30 batch jobs (~11 min of work), then one more job a minute later.
    const late = (lane: 'interactive' | 'batch'): Job => ({ startSeconds: 60, request: REQUEST, lane });
    const asInteractive = workload('lanes', [...burstOf(30), late('interactive')]);
    const asBatch = workload('lanes', [...burstOf(30), late('batch')]);

    // Act
    const interactive = await simulateTrial(asInteractive, 0, adaptivePollPolicy, shape);
    const batch = await simulateTrial(asBatch, 0, adaptivePollPolicy, shape);

    // Assess: it waits for the tasks holding slots (about 2 runs), not for the whole queue.
    expect(interactive.startWaits.interactive).toHaveLength(1);
    expect(interactive.startWaits.interactive[0]).toBeLessThan(60);
    expect(batch.startWaits.batch.at(-1)).toBeGreaterThan(500);
  });

  it('leaves batch a share while interactive requests wait ahead of it', async () => {
    // Prepare: 20 interactive requests (~7 min of work), then 5 batch requests a second later.
    const interactive = burstOf(20).map((job): Job => ({ ...job, lane: 'interactive' }));
    const batch = burstOf(5).map((job): Job => ({ ...job, startSeconds: 1 + job.startSeconds }));

    // Act
    const result = await simulateTrial(
      workload('share', [...interactive, ...batch]),
      0,
      adaptivePollPolicy,
      shape,
    );

    // Assess: batch's first task starts after a few interactive ones, not after all 20.
    const firstBatch = Math.min(...result.startWaits.batch);
    const lastInteractive = Math.max(...result.startWaits.interactive);
    expect(firstBatch).toBeLessThan(lastInteractive / 2);
  });

  it('spreads a burst over every account of the pool and ends it sooner', async () => {
    // Act
    const one = await simulateTrial(workload('pool', burstOf(30), 1), 0, adaptivePollPolicy, shape);
    const three = await simulateTrial(workload('pool', burstOf(30), 3), 0, adaptivePollPolicy, shape);

    // Assess
    expect(three.accounts.map((account) => account.peakOutstandingTasks)).toEqual([2, 2, 2]);
    expect(three.makespanSeconds).toBeLessThan(one.makespanSeconds * 0.4);
  });

  it('runs the dispatcher at the enqueue and at each release of a single job', async () => {
    // Act: one job ends well within the first minute, before any sweep.
    const result = await simulateTrial(single!, 0, adaptivePollPolicy, shape);

    // Assess: Admit's kick, and the releases of Poll, Notify and the reconciler (each rings).
    expect(result.dispatcherInvocations).toBe(4);
    expect(result.dispatcherGbSeconds).toBeGreaterThan(0);
  });

  it('counts the queue’s write units of a single job, operation by operation', async () => {
    // Act
    const result = await simulateTrial(single!, 0, adaptivePollPolicy, shape);

    // Assess: its entry's life, its account's task (a small recent-tasks item: 1 WRU), the
    // dispatcher's state after the grant, and four invocations that each take and release the lease.
    const u = QUEUE_UNITS;
    const life =
      u.enqueue.write +
      u.grant.write +
      u.submit.write +
      1 +
      u.start.write +
      u.release.write +
      2 * u.releaseNothing.write;
    expect(result.queueWriteUnits).toBe(life + u.stateWrite + 4 * (u.leaseTake + u.leaseRelease));
    expect(result.queueReadUnits).toBeGreaterThan(u.enqueue.read + u.submit.read);
  });

  it('sweeps every minute while jobs wait', async () => {
    // Act: 10 jobs take about 4 minutes.
    const result = await simulateTrial(workload('burst-10', burstOf(10)), 0, adaptivePollPolicy, shape);

    // Assess: an enqueue and three releases per job, plus the sweeps.
    const sweeps = result.dispatcherInvocations - 4 * 10;
    expect(sweeps).toBe(Math.floor(result.makespanSeconds / ADMISSION_SETTINGS.sweepSeconds));
  });

  it('serves a small batch that comes after a big one round-robin with it, and reports each batch', async () => {
    // Prepare: a 40-line batch (~14 min of work), then a 3-line batch a minute later.
    const batch = (name: string, lines: number, at: number): Job[] =>
      Array.from({ length: lines }, (_, i) => ({
        startSeconds: at + i * 0.01,
        request: REQUEST,
        batch: { name, line: i + 1 },
      }));

    // Act
    const result = await simulateTrial(
      workload('fair', [...batch('big', 40, 0), ...batch('small', 3, 60)]),
      0,
      adaptivePollPolicy,
      shape,
    );

    // Assess: the small one waits for a few of the big one's lines, not for all of them.
    const [big, small] = result.batches;
    expect([big?.name, big?.lines, big?.failed, small?.name, small?.lines, small?.failed]).toEqual([
      'big',
      40,
      0,
      'small',
      3,
      0,
    ]);
    expect(small?.makespanSeconds).toBeLessThan(300);
    expect(big?.makespanSeconds).toBeGreaterThan(600);
  });

  it('follows a batch with a GET a minute, estimating its end by the API’s code over the simulated state', async () => {
    // Prepare: a 60-line batch, about 22 minutes of work.
    const lines: Job[] = Array.from({ length: 60 }, (_, i) => ({
      startSeconds: i * 0.01,
      request: REQUEST,
      batch: { name: 'only', line: i + 1 },
    }));

    // Act
    const result = await simulateTrial(workload('eta', lines), 0, adaptivePollPolicy, shape);

    // Assess: one read a minute from its POST, and one more that finds it ended.
    const [batch] = result.batches;
    const reads = Math.floor(result.makespanSeconds / 60) + 1;
    expect(batch?.eta?.reads).toBe(reads);
    expect(result.apiBatchGets).toBe(reads + 1);
    expect(result.apiCreates).toBe(1);
    expect(result.apiBatchReadUnits).toBeGreaterThan(reads * (1 + 6 * 0.5));
    // At 10, 50 and 90 % of its run, the estimate is within a fifth of the time left then.
    expect(batch?.eta?.at).toHaveLength(3);
    for (const error of batch?.eta?.at ?? []) expect(error).toBeLessThan(0.2);
  });

  it('creates each job outside a batch with its own request, and follows no batch', async () => {
    const result = await simulateTrial(workload('burst-10', burstOf(10)), 0, adaptivePollPolicy, shape);

    expect([result.apiCreates, result.apiBatchGets, result.batches]).toEqual([10, 0, []]);
  });

  it('measures the makespan from the first start to the last image stored', async () => {
    // Act
    const result = await simulateTrial(single!, 0, adaptivePollPolicy, shape);

    // Assess: one ~22 s task, its detection and Persist.
    expect(result.makespanSeconds).toBeGreaterThan(15);
    expect(result.makespanSeconds).toBeLessThan(35);
  });
});

describe('the simulated dispatcher’s lease', () => {
  /** Runs a dispatcher's scheduled events in time order until none is left. */
  function dispatcherAlone() {
    const events: { atMs: number; run: () => void }[] = [];
    const dispatcher = new SimDispatcher(accountLimits(1), {
      schedule: (atMs, run) => events.push({ atMs, run }),
      granted: () => undefined,
      invokeMs: 25,
    });
    const drain = () => {
      for (let next = events.shift(); next; next = events.shift()) {
        next.run();
        events.sort((a, b) => a.atMs - b.atMs);
      }
    };
    return { dispatcher, drain };
  }

  it('makes kicks during a run leave requests, and their holder run once more for all of them', () => {
    // Prepare
    const { dispatcher, drain } = dispatcherAlone();

    // Act: three kicks at once: the first takes the lease, the other two find it held.
    for (let i = 0; i < 3; i++) dispatcher.kick(0);
    drain();

    // Assess
    const u = QUEUE_UNITS;
    expect([dispatcher.invocations, dispatcher.runs]).toEqual([3, 2]);
    expect(dispatcher.writeUnits).toBe(u.leaseTake + 2 * u.leaseRequest + u.leaseAgain + u.leaseRelease);
  });

  it('keeps the lanes’ counters as the adapters do: what the API reads with its state', () => {
    // Prepare
    const { dispatcher, drain } = dispatcherAlone();
    const entry = (id: string, at: number, lane: 'interactive' | 'batch' = 'batch') => ({
      id,
      lane,
      enqueuedAt: at,
      expectedRunSeconds: 20,
    });

    // Act: two singles and three batch lines wait; the dispatcher grants its two slots.
    ['single-1', 'batch-x-1', 'batch-x-2', 'single-2', 'batch-x-3'].forEach((id, at) => {
      dispatcher.enqueue(entry(id, at));
    });
    dispatcher.enqueue(entry('fast', 5, 'interactive'));
    dispatcher.kick(0);
    drain();

    // Assess: the interactive one and the first of batch's fair order (a single, round 1) left.
    const lanes = dispatcher.lanes();
    expect([waitingIn(lanes.interactive), waitingIn(lanes.batch), singlesIn(lanes.batch)]).toEqual([0, 4, 1]);
    expect(dispatcher.state.pace).toEqual({ 'account-1': expect.objectContaining({ freed: 0 }) });
  });

  it('runs each kick that comes after the last run ended on its own', () => {
    // Prepare
    const { dispatcher, drain } = dispatcherAlone();

    // Act
    dispatcher.kick(0);
    drain();
    dispatcher.kick(60_000);
    drain();

    // Assess
    expect([dispatcher.invocations, dispatcher.runs]).toEqual([2, 2]);
    expect(dispatcher.writeUnits).toBe(2 * (QUEUE_UNITS.leaseTake + QUEUE_UNITS.leaseRelease));
  });
});
