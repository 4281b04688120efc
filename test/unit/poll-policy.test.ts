import { describe, expect, it } from 'vitest';
import { nextPollSeconds } from '../../functions/shared/poll-policy.js';

const FAR = 3600;
const STATUSES = ['queued', 'running'] as const;
const POLL_COUNTS = Array.from({ length: 40 }, (_, i) => i);
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

function everyInput() {
  return STATUSES.flatMap((status) =>
    POLL_COUNTS.flatMap((pollCount) =>
      DEADLINES.map((secondsUntilDeadline) => ({ status, pollCount, secondsUntilDeadline })),
    ),
  );
}

describe('nextPollSeconds', () => {
  it('always returns an integer of at least 1', () => {
    // Act
    const waits = everyInput().map((input) => ({ input, wait: nextPollSeconds(input) }));

    // Assess
    const bad = waits.filter(({ wait }) => !Number.isInteger(wait) || wait < 1);
    expect(bad).toEqual([]);
  });

  it('follows the SDK schedule 1,1,2,2,2,4,4,4,5,5 while running', () => {
    // Act
    const waits = POLL_COUNTS.slice(0, 10).map((pollCount) =>
      nextPollSeconds({ status: 'running', pollCount, secondsUntilDeadline: FAR }),
    );

    // Assess
    expect(waits).toEqual([1, 1, 2, 2, 2, 4, 4, 4, 5, 5]);
  });

  it('stays at 5 s while running after the schedule ends', () => {
    // Act
    const wait = nextPollSeconds({ status: 'running', pollCount: 500, secondsUntilDeadline: FAR });

    // Assess
    expect(wait).toBe(5);
  });

  it('never waits beyond the remaining time, rounded up', () => {
    // Act
    const overshoots = everyInput()
      .filter(({ secondsUntilDeadline }) => secondsUntilDeadline > 0)
      .filter((input) => nextPollSeconds(input) > Math.max(1, Math.ceil(input.secondsUntilDeadline)));

    // Assess
    expect(overshoots).toEqual([]);
  });

  it('rounds a fractional remaining time up so the deadline poll is not early', () => {
    // Act
    const wait = nextPollSeconds({ status: 'running', pollCount: 9, secondsUntilDeadline: 2.3 });

    // Assess
    expect(wait).toBe(3);
  });

  it('caps a queued wait at the remaining time', () => {
    // Act
    const wait = nextPollSeconds({ status: 'queued', pollCount: 20, secondsUntilDeadline: 4.2 });

    // Assess
    expect(wait).toBe(5);
  });

  it.each(STATUSES.flatMap((status) => [0, -0.5, -1, -3600].map((seconds) => [status, seconds] as const)))(
    'waits 1 s when %s and the deadline is %d s away (passed)',
    (status, secondsUntilDeadline) => {
      // Act
      const wait = nextPollSeconds({ status, pollCount: 20, secondsUntilDeadline });

      // Assess
      expect(wait).toBe(1);
    },
  );

  it('never polls a queued task faster than a running one at the same poll count', () => {
    // Act
    const faster = POLL_COUNTS.filter(
      (pollCount) =>
        nextPollSeconds({ status: 'queued', pollCount, secondsUntilDeadline: FAR }) <
        nextPollSeconds({ status: 'running', pollCount, secondsUntilDeadline: FAR }),
    );

    // Assess
    expect(faster).toEqual([]);
  });

  it('slows a queued task down to 10 s', () => {
    // Act
    const waits = POLL_COUNTS.map((pollCount) =>
      nextPollSeconds({ status: 'queued', pollCount, secondsUntilDeadline: FAR }),
    );

    // Assess
    expect(Math.max(...waits)).toBe(10);
    expect(waits.at(-1)).toBe(10);
  });

  it('never polls a queued task more often as it waits longer', () => {
    // Act
    const waits = POLL_COUNTS.map((pollCount) =>
      nextPollSeconds({ status: 'queued', pollCount, secondsUntilDeadline: FAR }),
    );

    // Assess
    const drops = waits.filter((wait, i) => i > 0 && wait < (waits[i - 1] ?? 0));
    expect(drops).toEqual([]);
  });
});

describe('nextPollSeconds: unreadable deadline', () => {
  it('waits 1 s when the remaining time is not a number', () => {
    expect(nextPollSeconds({ status: 'running', pollCount: 5, secondsUntilDeadline: Number.NaN })).toBe(1);
  });
});
