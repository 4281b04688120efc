import { describe, expect, it } from 'vitest';
import type { BatchCounts } from '../../functions/shared/batch.js';
import {
  BatchProgress,
  bar,
  batchExitCode,
  batchExitReason,
  countsSummary,
  doneOf,
  etaMs,
  formatDuration,
  formatRate,
  PLAIN_LINE_EVERY_MS,
  renderBatchBar,
  renderBatchLine,
} from '../../local/cli/batch-progress.js';

/** The batch progress of `sd35 batch … --wait` and `npm run generate -- --from`: every time is given. */
const T0 = Date.parse('2026-03-01T12:00:00Z');

function counts(over: Partial<BatchCounts>): BatchCounts {
  return {
    total: 40,
    rejected: 0,
    waiting: 0,
    running: 0,
    succeeded: 0,
    partial: 0,
    failed: 0,
    canceled: 0,
    ...over,
  };
}

const running = (over: Partial<BatchCounts>, estimatedCompletionAt?: string) => ({
  status: 'in_progress',
  counts: counts(over),
  ...(estimatedCompletionAt ? { estimatedCompletionAt } : {}),
});

describe('the counts', () => {
  it('counts a rejected line as done, and waiting and running ones as not', () => {
    expect(doneOf(counts({ rejected: 1, succeeded: 9, running: 3, waiting: 27 }))).toBe(10);
  });

  it('summarizes the counts that are not zero, in a fixed order', () => {
    expect(countsSummary(counts({ total: 3, rejected: 1, succeeded: 2 }))).toBe(
      '3 lines: 2 succeeded, 1 rejected',
    );
    expect(countsSummary(counts({ total: 1, waiting: 1 }))).toBe('1 line: 1 waiting');
  });
});

describe('batchExitCode', () => {
  it('is 2 when a line was rejected, whatever else happened', () => {
    expect(batchExitCode(counts({ rejected: 1, failed: 2, succeeded: 37 }))).toBe(2);
  });

  it('is 1 when a line failed or was canceled', () => {
    expect(batchExitCode(counts({ failed: 1, succeeded: 39 }))).toBe(1);
    expect(batchExitCode(counts({ canceled: 40 }))).toBe(1);
  });

  it('is 0 when every line succeeded, some of them partly', () => {
    expect(batchExitCode(counts({ succeeded: 38, partial: 2 }))).toBe(0);
  });

  it('says why in one line', () => {
    expect(batchExitReason('batch-x', counts({ rejected: 1, succeeded: 39 }))).toBe(
      'batch batch-x: 1 line rejected',
    );
    expect(batchExitReason('batch-x', counts({ failed: 2, canceled: 1, succeeded: 37 }))).toBe(
      'batch batch-x: 2 failed, 1 canceled of 40 lines',
    );
    expect(batchExitReason('batch-x', counts({ succeeded: 40 }))).toBeUndefined();
  });
});

describe('formatting', () => {
  it('writes durations rounded up to the second', () => {
    expect(formatDuration(0)).toBe('0s');
    expect(formatDuration(44_001)).toBe('45s');
    expect(formatDuration(245_000)).toBe('4m 05s');
    expect(formatDuration(2 * 3_600_000 + 180_000)).toBe('2h 03m');
  });

  it('writes a rate with one decimal under 10 a minute, and a dash before there is one', () => {
    expect(formatRate(undefined)).toBe('–/min');
    expect(formatRate(6)).toBe('6.0/min');
    expect(formatRate(41.6)).toBe('42/min');
  });

  it('fills the bar by the share done, full only at the end', () => {
    expect(bar(0, 40, 8)).toBe('[░░░░░░░░]');
    expect(bar(39, 40, 8)).toBe('[███████░]');
    expect(bar(40, 40, 8)).toBe('[████████]');
  });
});

describe('etaMs', () => {
  const inFiveMinutes = new Date(T0 + 300_000).toISOString();

  it('takes the API estimate before the observed rate stands on enough ends', () => {
    expect(
      etaMs({
        batch: running({ succeeded: 10, waiting: 30 }, inFiveMinutes),
        now: T0,
        ratePerMinute: 60,
        observed: 2,
      }),
    ).toBe(300_000);
  });

  it('takes the observed rate once it stands on three ends or more', () => {
    // 30 lines left at 60 a minute: 30 s.
    expect(
      etaMs({
        batch: running({ succeeded: 10, waiting: 30 }, inFiveMinutes),
        now: T0,
        ratePerMinute: 60,
        observed: 3,
      }),
    ).toBe(30_000);
  });

  it('falls back to the rate when the API estimate has passed, and knows nothing without either', () => {
    const past = new Date(T0 - 1000).toISOString();
    expect(
      etaMs({
        batch: running({ succeeded: 10, waiting: 30 }, past),
        now: T0,
        ratePerMinute: 10,
        observed: 1,
      }),
    ).toBe(180_000);
    expect(etaMs({ batch: running({ waiting: 40 }), now: T0 })).toBeUndefined();
  });

  it('is nothing once the batch ended', () => {
    expect(
      etaMs({ batch: { status: 'completed', counts: counts({ succeeded: 40 }) }, now: T0 }),
    ).toBeUndefined();
  });
});

describe('renderBatchBar', () => {
  it('shows the status, the bar, done/total, the rate, the ETA and what is worth a glance', () => {
    const text = renderBatchBar({
      batch: running({ succeeded: 9, failed: 1, running: 3, waiting: 27 }),
      now: T0,
      ratePerMinute: 6,
      observed: 10,
    });

    // 30 lines left at 6 a minute: 5 minutes.
    expect(text).toBe(
      'in_progress [██████░░░░░░░░░░░░░░░░░░] 10/40  25% · 6.0/min · ETA 5m 00s · 3 running · 1 failed',
    );
  });

  it('says the ETA is unknown before anything is known', () => {
    expect(renderBatchBar({ batch: running({ waiting: 40 }), now: T0 })).toBe(
      'in_progress [░░░░░░░░░░░░░░░░░░░░░░░░] 0/40   0% · –/min · ETA –',
    );
  });

  it('drops the ETA once the batch ended', () => {
    const text = renderBatchBar({
      batch: { status: 'completed', counts: counts({ total: 3, succeeded: 2, rejected: 1 }) },
      now: T0,
      ratePerMinute: 40,
    });

    expect(text).toBe('completed [████████████████████████] 3/3 100% · 40/min · 1 rejected');
  });
});

describe('renderBatchLine', () => {
  it('shows the elapsed time, done/total, the rate, the ETA and the waiting lines', () => {
    const text = renderBatchLine(
      {
        batch: running({ succeeded: 10, running: 3, waiting: 27 }, new Date(T0 + 65_000).toISOString()),
        now: T0,
      },
      12_000,
    );

    expect(text).toBe('[  12.0s] in_progress · 10/40 done · –/min · ETA 1m 05s · 3 running · 27 waiting');
  });
});

describe('BatchProgress', () => {
  it('redraws the bar in place on a terminal only when it changes, and closes it with a newline', () => {
    const progress = new BatchProgress(true);

    const first = progress.update(running({ waiting: 40 }), T0);
    const same = progress.update(running({ waiting: 40 }), T0 + 500);
    const moved = progress.update(running({ succeeded: 4, waiting: 36 }), T0 + 60_000);

    expect(first).toBe('\r\x1b[2Kin_progress [░░░░░░░░░░░░░░░░░░░░░░░░] 0/40   0% · –/min · ETA –');
    expect(same).toBeUndefined();
    // 4 ended in the minute since the first read; 36 left at 4 a minute: 9 minutes.
    expect(moved).toBe('\r\x1b[2Kin_progress [██░░░░░░░░░░░░░░░░░░░░░░] 4/40  10% · 4.0/min · ETA 9m 00s');
    expect(progress.end()).toBe('\n');
    expect(progress.end()).toBe('');
  });

  it('counts the rate from the first read, not from the batch’s start', () => {
    const progress = new BatchProgress(true);

    progress.update(running({ succeeded: 20, waiting: 20 }), T0);
    const text = progress.update(running({ succeeded: 30, waiting: 10 }), T0 + 120_000);

    expect(text).toContain(' · 5.0/min · ');
  });

  it('prints a plain line at the first read, on a status change and at the end, and counts moves at most every 10 s', () => {
    const progress = new BatchProgress(false);
    const lines = [
      progress.update(running({ waiting: 40 }), T0),
      progress.update(running({ succeeded: 1, waiting: 39 }), T0 + 1_000),
      progress.update(running({ succeeded: 2, waiting: 38 }), T0 + PLAIN_LINE_EVERY_MS),
      progress.update(running({ succeeded: 2, waiting: 38 }), T0 + 3 * PLAIN_LINE_EVERY_MS),
      progress.update({ status: 'cancelling', counts: counts({ succeeded: 2, waiting: 38 }) }, T0 + 31_000),
      progress.update({ status: 'cancelled', counts: counts({ succeeded: 2, canceled: 38 }) }, T0 + 32_000),
    ];

    expect(lines).toEqual([
      '[   0.0s] in_progress · 0/40 done · –/min · ETA – · 40 waiting\n',
      undefined,
      '[  10.0s] in_progress · 2/40 done · 12/min · ETA 3m 10s · 38 waiting\n',
      undefined,
      '[  31.0s] cancelling · 2/40 done · 3.9/min · ETA 9m 49s · 38 waiting\n',
      '[  32.0s] cancelled · 40/40 done · 75/min · 38 canceled\n',
    ]);
    expect(progress.end()).toBe('');
  });
});
