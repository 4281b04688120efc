import { beforeAll, describe, expect, it } from 'vitest';
import { Random } from '../../bench/lib/random.js';
import { DEFAULT_TRUTH, drawRunMs, peakPerSecond, WindowCounter } from '../../bench/poll-sim/dashscope.js';
import { fixedPolicy, sdkPolicy } from '../../bench/poll-sim/policies.js';
import { simulateTrial } from '../../bench/poll-sim/simulate.js';
import { synthesizeWorkflowShape, type WorkflowShape } from '../../bench/poll-sim/workflow-shape.js';
import { WORKLOADS } from '../../bench/poll-sim/workloads.js';
import { generationRequestSchema } from '../../functions/shared/generation-request.js';
import { adaptivePollPolicy } from '../../functions/shared/poll-policy.js';
import { estimateRun } from '../../functions/shared/run-time-estimate.js';

/** The poll benchmark's simulation: it must count as Step Functions does, and stay repeatable. */
let shape: WorkflowShape;
const single = WORKLOADS.find((workload) => workload.name === 'single');
const mixed = WORKLOADS.find((workload) => workload.name === 'mixed');

beforeAll(() => {
  shape = synthesizeWorkflowShape();
});

describe('the workflow shape, read from the synthesized state machine', () => {
  it('has a poll loop of Wait, Poll and Check status: 3 transitions and 9 history events', () => {
    expect(shape.loop.map((step) => step.name)).toEqual(['Wait', 'Poll', 'Check status']);
    expect(shape.loop.reduce((sum, step) => sum + step.transitions, 0)).toBe(3);
    expect(shape.loop.reduce((sum, step) => sum + step.events, 0)).toBe(9);
  });

  it('starts with Init and Submit and ends, on success, with Persist first', () => {
    expect(shape.before.map((step) => step.name)).toEqual(['Init', 'Submit']);
    expect(shape.after[0]?.name).toBe('Persist');
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
