import { describe, expect, it } from 'vitest';
import {
  JITTER_FRACTION,
  LAG_TOLERANCE_SECONDS,
  MAX_WAIT_SECONDS,
  MIN_LIST_INTERVAL_SECONDS,
  nextPollSeconds,
  normalCdf,
  normalQuantile,
  OVERRUN_FRACTION,
  type PollPolicyInput,
  pollJitter,
  QUEUED_TAIL_INTERVAL_MS,
  STARTED_STAY_SECONDS,
  shouldListQueue,
  TAIL_BUDGET_SECONDS,
  TAIL_INTERVAL_MS,
  type TailPollInput,
  tailPollMs,
} from '../../functions/shared/poll-policy.js';
import { estimateRun } from '../../functions/shared/run-time-estimate.js';

const FAR = 3600;
/** A default request: one 1024*1024 image, 40 steps, large model (about 20 s). */
const EXPECTED = estimateRun({ model: 'stable-diffusion-3.5-large', size: '1024*1024', steps: 40, n: 1 });
const DEADLINES = [
  -3600,
  -1,
  -0.5,
  0,
  0.001,
  0.5,
  1,
  1.5,
  2.3,
  4.99,
  9.01,
  59,
  FAR,
  Number.POSITIVE_INFINITY,
];
const ELAPSED = [0, 0.5, 3, 12, 19, 25, 40, 200, 5000];

function input(overrides: Partial<PollPolicyInput> = {}): PollPolicyInput {
  return { status: 'running', pollCount: 3, secondsUntilDeadline: FAR, expected: EXPECTED, ...overrides };
}

/** A broad grid over everything the policy reads. */
function everyInput(): PollPolicyInput[] {
  const inputs: PollPolicyInput[] = [];
  for (const secondsUntilDeadline of DEADLINES) {
    for (const elapsed of ELAPSED) {
      inputs.push(input({ secondsUntilDeadline, runningForSeconds: elapsed }));
      inputs.push(
        input({
          secondsUntilDeadline,
          runningForSeconds: elapsed,
          progress: { total: 4, succeeded: 1, failed: 1 },
        }),
      );
      inputs.push(input({ status: 'queued', secondsUntilDeadline, secondsSinceSubmit: elapsed }));
      for (const ahead of [0, 1, 5, 99, 10_000]) {
        inputs.push(
          input({
            status: 'queued',
            secondsUntilDeadline,
            secondsSinceSubmit: elapsed,
            queue: { ahead, secondsAgo: elapsed, drained: { tasks: 3, seconds: 60 } },
            jitter: 0.99,
          }),
        );
      }
    }
  }
  return inputs;
}

describe('nextPollSeconds: what the Wait state needs', () => {
  it('always returns an integer of at least 1', () => {
    // Act
    const bad = everyInput().filter((each) => {
      const wait = nextPollSeconds(each);
      return !Number.isInteger(wait) || wait < 1;
    });

    // Assess
    expect(bad).toEqual([]);
  });

  it('never waits beyond the remaining time, rounded up', () => {
    // Act
    const overshoots = everyInput()
      .filter(({ secondsUntilDeadline }) => secondsUntilDeadline > 0)
      .filter((each) => nextPollSeconds(each) > Math.max(1, Math.ceil(each.secondsUntilDeadline)));

    // Assess
    expect(overshoots).toEqual([]);
  });

  it('rounds a fractional remaining time up so the deadline poll is not early', () => {
    // Act
    const wait = nextPollSeconds(input({ runningForSeconds: 0, secondsUntilDeadline: 2.3 }));

    // Assess
    expect(wait).toBe(3);
  });

  it.each(
    (['queued', 'running'] as const).flatMap((status) =>
      [0, -0.5, -1, -3600, Number.NaN].map((seconds) => [status, seconds] as const),
    ),
  )(
    'waits 1 s when %s and the deadline is %d s away (passed or unreadable)',
    (status, secondsUntilDeadline) => {
      // Act
      const wait = nextPollSeconds(input({ status, secondsUntilDeadline }));

      // Assess
      expect(wait).toBe(1);
    },
  );

  it(`never waits more than ${MAX_WAIT_SECONDS} s, however long the queue`, () => {
    // Act
    const wait = nextPollSeconds(
      input({ status: 'queued', queue: { ahead: 10_000, secondsAgo: 0 }, secondsUntilDeadline: 86_400 }),
    );

    // Assess
    expect(wait).toBe(MAX_WAIT_SECONDS);
  });
});

describe('nextPollSeconds: a running task', () => {
  it('waits until near the low end of the expected run when the run has just started', () => {
    // Act
    const wait = nextPollSeconds(input({ runningForSeconds: 1 }));

    // Assess: well past the SDK's 1-5 s, but before the estimate's median end.
    expect(wait).toBeGreaterThan(8);
    expect(1 + wait).toBeLessThan(EXPECTED.seconds);
  });

  it('polls every second once the end is likely', () => {
    // Act
    const waits = [15, 17, 20, 23].map((elapsed) => nextPollSeconds(input({ runningForSeconds: elapsed })));

    // Assess
    expect(waits).toEqual([1, 1, 1, 1]);
  });

  it('never waits longer as the run goes on, until it outruns the estimate', () => {
    // Act
    const waits = Array.from({ length: 30 }, (_, elapsed) =>
      nextPollSeconds(input({ runningForSeconds: elapsed })),
    );

    // Assess
    const rises = waits.filter((wait, i) => i > 0 && wait > (waits[i - 1] ?? 0));
    expect(rises).toEqual([]);
  });

  it('reads task_metrics: no image of 4 done after 6 s means at least 4 × 5 s of run', () => {
    // Act
    const wait = nextPollSeconds(
      input({
        expected: estimateRun({ model: 'stable-diffusion-3.5-large', size: '512*512', steps: 40, n: 4 }),
        runningForSeconds: 6,
        progress: { total: 4, succeeded: 0, failed: 0 },
      }),
    );

    // Assess: the run ends after 1 + 4 × 5 = 21 s, 15 s from now.
    expect(wait).toBeGreaterThanOrEqual(15);
  });

  it('reads task_metrics: 3 of 4 done after 30 s brackets the end within the next 10 s', () => {
    // Act
    const wait = nextPollSeconds(
      input({ runningForSeconds: 30, progress: { total: 4, succeeded: 2, failed: 1 } }),
    );

    // Assess
    expect(wait).toBeLessThanOrEqual(10);
  });

  it('backs off to a fraction of the run age once the run outlives its estimate', () => {
    // Act
    const wait = nextPollSeconds(input({ runningForSeconds: 200 }));

    // Assess
    expect(wait).toBe(Math.floor(LAG_TOLERANCE_SECONDS + OVERRUN_FRACTION * 200));
  });

  it('takes a missing run age as a run that has just started', () => {
    // Act
    const wait = nextPollSeconds(input({ runningForSeconds: undefined }));

    // Assess
    expect(wait).toBe(nextPollSeconds(input({ runningForSeconds: 0 })));
  });
});

describe('nextPollSeconds: a queued task', () => {
  it('without a queue reading, looks again after 1 s: a task granted a free slot starts at once', () => {
    // Act
    const wait = nextPollSeconds(input({ status: 'queued', pollCount: 0 }));

    // Assess
    expect(wait).toBe(1);
  });

  it('looks at a large generation soon after its submit, not near the end of its run (#24)', () => {
    // Prepare: 4 images of 1024*1024 at 40 steps, about 77 s; the first look used to aim at the
    // low end of its run (~45 s after submit), and the index showed it queued until then.
    const large = estimateRun({ model: 'stable-diffusion-3.5-large', size: '1024*1024', steps: 40, n: 4 });

    // Act
    const wait = nextPollSeconds(input({ status: 'queued', pollCount: 0, expected: large }));

    // Assess
    expect(large.seconds).toBeGreaterThan(60);
    expect(wait).toBe(1);
  });

  it('without a queue reading, polls less often the longer it has waited', () => {
    // Act
    const waits = [0, 60, 600, 1200].map((secondsSinceSubmit) =>
      nextPollSeconds(input({ status: 'queued', secondsSinceSubmit })),
    );

    // Assess
    expect(waits).toEqual([...waits].sort((a, b) => a - b));
    expect(waits.at(-1)).toBeGreaterThan(waits[0] ?? 0);
  });

  it('waits longer the more tasks are ahead', () => {
    // Act
    const waits = [0, 1, 3, 10, 30].map((ahead) =>
      nextPollSeconds(input({ status: 'queued', queue: { ahead, secondsAgo: 0 } })),
    );

    // Assess
    expect(new Set(waits).size).toBe(waits.length);
    expect(waits).toEqual([...waits].sort((a, b) => a - b));
  });

  it('wakes before the queue ahead can have drained', () => {
    // Prepare: 30 tasks ahead, each measured at 20 s: the earliest end is far, not sooner than 10 minutes.
    const queue = { ahead: 30, secondsAgo: 0, drained: { tasks: 20, seconds: 400 } };

    // Act
    const wait = nextPollSeconds(input({ status: 'queued', queue }));

    // Assess
    expect(wait).toBeGreaterThan(300);
    expect(wait).toBeLessThan(30 * 20);
  });

  it('trusts a measured drain rate more than its own estimate', () => {
    // Act
    const unmeasured = nextPollSeconds(input({ status: 'queued', queue: { ahead: 20, secondsAgo: 0 } }));
    const measured = nextPollSeconds(
      input({
        status: 'queued',
        queue: { ahead: 20, secondsAgo: 0, drained: { tasks: 40, seconds: 40 * EXPECTED.seconds } },
      }),
    );

    // Assess
    expect(measured).toBeGreaterThan(unmeasured);
  });

  it('counts the time since the queue was read', () => {
    // Act
    const fresh = nextPollSeconds(input({ status: 'queued', queue: { ahead: 30, secondsAgo: 0 } }));
    const stale = nextPollSeconds(input({ status: 'queued', queue: { ahead: 30, secondsAgo: 30 } }));

    // Assess
    expect(stale).toBe(fresh - 30);
  });

  it('with nothing ahead, looks again after 1 s: it may start at once', () => {
    // Act
    const wait = nextPollSeconds(input({ status: 'queued', queue: { ahead: 0, secondsAgo: 0 } }));

    // Assess
    expect(wait).toBe(1);
  });

  it('aims at the start, not the end: its own run adds nothing to the wait', () => {
    // Act
    const short = nextPollSeconds(input({ status: 'queued', queue: { ahead: 3, secondsAgo: 0 } }));
    const long = nextPollSeconds(
      input({
        status: 'queued',
        queue: { ahead: 3, secondsAgo: 0 },
        expected: { ...EXPECTED, seconds: 300 },
      }),
    );

    // Assess
    expect(long).toBe(short);
  });
});

describe('nextPollSeconds: jitter', () => {
  it(`only shortens a wait, by at most ${JITTER_FRACTION * 100} %`, () => {
    // Prepare
    const base = input({ status: 'queued', queue: { ahead: 40, secondsAgo: 0 } });
    const plain = nextPollSeconds(base);

    // Act
    const jittered = [0.1, 0.5, 0.999].map((jitter) => nextPollSeconds({ ...base, jitter }));

    // Assess
    for (const wait of jittered) {
      expect(wait).toBeLessThanOrEqual(plain);
      expect(wait).toBeGreaterThanOrEqual(Math.floor(plain * (1 - JITTER_FRACTION)));
    }
    expect(new Set(jittered).size).toBeGreaterThan(1);
  });

  it('leaves 1-second waits alone', () => {
    // Act
    const wait = nextPollSeconds(input({ runningForSeconds: 20, jitter: 0.999 }));

    // Assess
    expect(wait).toBe(1);
  });
});

describe('shouldListQueue', () => {
  it('lists on the first PENDING poll', () => {
    expect(shouldListQueue({ pending: true })).toBe(true);
  });

  it('never lists a task that is not PENDING', () => {
    expect(shouldListQueue({ pending: false })).toBe(false);
  });

  it('stops listing once nothing is ahead', () => {
    expect(shouldListQueue({ pending: true, ahead: 0, secondsSinceLastList: 600 })).toBe(false);
  });

  it(`lists at most once per ${MIN_LIST_INTERVAL_SECONDS} s`, () => {
    expect(
      shouldListQueue({ pending: true, ahead: 3, secondsSinceLastList: MIN_LIST_INTERVAL_SECONDS - 1 }),
    ).toBe(false);
    expect(
      shouldListQueue({ pending: true, ahead: 3, secondsSinceLastList: MIN_LIST_INTERVAL_SECONDS }),
    ).toBe(true);
  });

  it('also waits the interval after a listing that failed', () => {
    expect(shouldListQueue({ pending: true, secondsSinceLastList: 2 })).toBe(false);
  });
});

describe('pollJitter', () => {
  it('is in [0, 1), repeatable, and differs between keys', () => {
    // Act
    const values = Array.from({ length: 200 }, (_, i) => pollJitter(`task-${i}:0`));

    // Assess
    expect(values.every((value) => value >= 0 && value < 1)).toBe(true);
    expect(pollJitter('task-7:0')).toBe(values[7]);
    expect(new Set(values).size).toBe(values.length);
  });
});

describe('normal distribution helpers', () => {
  it.each([
    [0, 0.5],
    [1.959964, 0.975],
    [-2.326348, 0.01],
    [3, 0.9986501],
  ])('Φ(%d) ≈ %d', (x, p) => {
    expect(normalCdf(x)).toBeCloseTo(p, 6);
  });

  it.each([0.001, 0.01, 0.02425, 0.3, 0.5, 0.9, 0.999])('Φ⁻¹ inverts Φ at %d', (p) => {
    expect(normalCdf(normalQuantile(p))).toBeCloseTo(p, 6);
  });

  it('answers ±∞ at the ends', () => {
    expect(normalQuantile(0)).toBe(Number.NEGATIVE_INFINITY);
    expect(normalQuantile(1)).toBe(Number.POSITIVE_INFINITY);
  });
});

describe('tailPollMs: querying again within one Poll invocation', () => {
  const tail = (overrides: Partial<TailPollInput> = {}): TailPollInput => ({
    ...input({ runningForSeconds: 19 }),
    invocationSeconds: 0,
    ...overrides,
  });

  it('keeps polling a run near its expected end, at the tail interval', () => {
    // Act
    const sleep = tailPollMs(tail({ runningForSeconds: 21 }));

    // Assess
    expect(sleep).toBe(TAIL_INTERVAL_MS);
  });

  it('never sleeps less than the tail interval', () => {
    // Act
    const sleeps = ELAPSED.map((runningForSeconds) => tailPollMs(tail({ runningForSeconds })));

    // Assess
    for (const sleep of sleeps)
      if (sleep !== undefined) expect(sleep).toBeGreaterThanOrEqual(TAIL_INTERVAL_MS);
  });

  it('sleeps longer early in the run than near its end', () => {
    // Act
    const early = tailPollMs(tail({ runningForSeconds: 12 }));
    const late = tailPollMs(tail({ runningForSeconds: 19 }));

    // Assess
    expect(early).toBeGreaterThan(late ?? Number.POSITIVE_INFINITY);
  });

  it('returns to the Wait state when the run will likely outlast the budget left', () => {
    // Act
    // 12 s into a ~20 s run: the next query could come soon, but the end may be 15 s away.
    const sleep = tailPollMs(tail({ runningForSeconds: 12, invocationSeconds: TAIL_BUDGET_SECONDS - 8 }));

    // Assess
    expect(sleep).toBeUndefined();
  });

  it(`returns to the Wait state once the ${TAIL_BUDGET_SECONDS} s budget would be exceeded`, () => {
    // Act
    const sleep = tailPollMs(tail({ runningForSeconds: 21, invocationSeconds: TAIL_BUDGET_SECONDS - 0.1 }));

    // Assess
    expect(sleep).toBeUndefined();
  });

  it('never sleeps to or past the deadline', () => {
    // Act
    const sleep = tailPollMs(tail({ runningForSeconds: 21, secondsUntilDeadline: 0.2 }));

    // Assess
    expect(sleep).toBeUndefined();
  });

  it('polls at the tail interval once the run has outlived its estimate', () => {
    // Act
    const sleep = tailPollMs(tail({ runningForSeconds: 200 }));

    // Assess
    expect(sleep).toBe(TAIL_INTERVAL_MS);
  });

  it('watches a queued task that may start within the budget, every second', () => {
    // Act
    const sleep = tailPollMs(
      tail({ status: 'queued', runningForSeconds: undefined, queue: { ahead: 0, secondsAgo: 0 } }),
    );

    // Assess
    expect(sleep).toBe(QUEUED_TAIL_INTERVAL_MS);
  });

  it('returns at once from a task just seen starting, so the index shows it running now', () => {
    // Act
    const sleep = tailPollMs(tail({ runningForSeconds: 0.5, statusChanged: true }));

    // Assess
    expect(sleep).toBeUndefined();
  });

  it(`keeps watching a task just seen starting that will end within ${STARTED_STAY_SECONDS} s`, () => {
    // Prepare: a 2-step turbo image, under 2 s
    const tiny = estimateRun({ model: 'stable-diffusion-3.5-large-turbo', size: '512*512', steps: 2, n: 1 });

    // Act
    const sleep = tailPollMs(tail({ runningForSeconds: 0.2, statusChanged: true, expected: tiny }));

    // Assess
    expect(sleep).toBeGreaterThanOrEqual(TAIL_INTERVAL_MS);
  });

  it('returns to the Wait state for a queued task behind a long queue', () => {
    // Act
    const sleep = tailPollMs(
      tail({ status: 'queued', runningForSeconds: undefined, queue: { ahead: 50, secondsAgo: 0 } }),
    );

    // Assess
    expect(sleep).toBeUndefined();
  });

  it('stays within the budget and before the deadline for every input', () => {
    // Act
    const cases = everyInput().flatMap((each) =>
      [0, 5, 29].map((invocationSeconds) => ({ ...each, invocationSeconds })),
    );

    // Assess
    for (const each of cases) {
      const sleep = tailPollMs(each);
      if (sleep === undefined) continue;
      expect(sleep / 1000).toBeLessThanOrEqual(TAIL_BUDGET_SECONDS - each.invocationSeconds);
      expect(sleep / 1000).toBeLessThan(each.secondsUntilDeadline);
    }
  });
});
