import type { BatchCounts } from '../../functions/shared/batch.js';
import { EXIT, type ExitCode } from './errors.js';

/**
 * A batch's progress as the CLI shows it while it follows one (`sd35 batch … --wait`, `npm run
 * generate -- --from`): a bar on a terminal, plain lines otherwise. Every function here is pure:
 * the time is always an argument, so the rendering is tested without a clock.
 */

/** What the progress reads of a batch: the API's view and the index's record both have it. */
export interface BatchProgressState {
  readonly status: string;
  readonly counts: BatchCounts;
  /** The API's estimate of its end, while it runs. */
  readonly estimatedCompletionAt?: string;
}

/** The statuses a batch ends in. */
const ENDED_STATUSES: ReadonlySet<string> = new Set(['completed', 'cancelled']);

/** Whether the batch has ended (`completed` or `cancelled`). */
export const batchEnded = (batch: { readonly status: string }): boolean => ENDED_STATUSES.has(batch.status);

/** Lines that ended, rejected ones included: total − waiting − running. */
export function doneOf(counts: BatchCounts): number {
  return Math.min(counts.total, Math.max(0, counts.total - counts.waiting - counts.running));
}

/** Generations that ended (rejected lines are not generations): what the rate counts. */
export function endedOf(counts: BatchCounts): number {
  return counts.succeeded + counts.partial + counts.failed + counts.canceled;
}

/** The order counts are listed in. */
const SUMMARY_KEYS = [
  'succeeded',
  'partial',
  'failed',
  'canceled',
  'rejected',
  'running',
  'waiting',
] as const;

/** `3 lines: 2 succeeded, 1 rejected`: the counts that are not zero. */
export function countsSummary(counts: BatchCounts): string {
  const parts = SUMMARY_KEYS.filter((key) => counts[key] > 0).map((key) => `${counts[key]} ${key}`);
  return `${counts.total} line${counts.total === 1 ? '' : 's'}${parts.length > 0 ? `: ${parts.join(', ')}` : ''}`;
}

/**
 * The exit code of a batch that ended, as `npm run generate -- --from` has it for a request file:
 * 2 when a line was rejected, else 1 when a line failed or was canceled, else 0 (partial is ok).
 */
export function batchExitCode(counts: BatchCounts): ExitCode {
  if (counts.rejected > 0) return EXIT.usage;
  if (counts.failed > 0 || counts.canceled > 0) return EXIT.failed;
  return EXIT.ok;
}

/** Why a batch's exit code is not 0, as one line; undefined when it is 0. */
export function batchExitReason(id: string, counts: BatchCounts): string | undefined {
  if (counts.rejected > 0) return `batch ${id}: ${plural(counts.rejected, 'line')} rejected`;
  const lost = [
    ...(counts.failed > 0 ? [`${counts.failed} failed`] : []),
    ...(counts.canceled > 0 ? [`${counts.canceled} canceled`] : []),
  ];
  return lost.length > 0 ? `batch ${id}: ${lost.join(', ')} of ${plural(counts.total, 'line')}` : undefined;
}

/** `45s`, `4m 05s`, `2h 03m`: a duration as the progress shows it (rounded up to the second). */
export function formatDuration(ms: number): string {
  const seconds = Math.max(0, Math.ceil(ms / 1000));
  if (seconds < 60) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m ${String(seconds % 60).padStart(2, '0')}s`;
  return `${Math.floor(minutes / 60)}h ${String(minutes % 60).padStart(2, '0')}m`;
}

/** `6.0/min`, `42/min`; `–/min` before there is a rate. */
export function formatRate(perMinute: number | undefined): string {
  if (perMinute === undefined) return '–/min';
  return `${perMinute < 10 ? perMinute.toFixed(1) : Math.round(perMinute)}/min`;
}

/** Where the follower is: the batch, when it looked, and the rate it has observed so far. */
export interface ProgressSample {
  readonly batch: BatchProgressState;
  /** Now, in ms since the epoch. */
  readonly now: number;
  /** Generations ended per minute since the follower started, if known. */
  readonly ratePerMinute?: number;
  /** How many generations ended since the follower started: what the rate stands on. */
  readonly observed?: number;
}

/** The observed rate is trusted over the API's estimate once this many generations ended under watch. */
export const TRUSTED_RATE_ENDS = 3;

/**
 * How long until the batch ends: the remaining lines at the observed rate once it stands on
 * {@link TRUSTED_RATE_ENDS} ends; before that the API's estimate while it lies ahead (a model of
 * the queue and of a typical run, an upper bound), else the observed rate; undefined when neither
 * is known (or the batch has ended).
 */
export function etaMs(sample: ProgressSample): number | undefined {
  const { batch, now, ratePerMinute } = sample;
  if (batchEnded(batch)) return undefined;
  const remaining = batch.counts.total - doneOf(batch.counts);
  if (remaining <= 0) return 0;
  const byRate = ratePerMinute && ratePerMinute > 0 ? (remaining / ratePerMinute) * 60_000 : undefined;
  if (byRate !== undefined && (sample.observed ?? 0) >= TRUSTED_RATE_ENDS) return byRate;
  const estimated = batch.estimatedCompletionAt ? Date.parse(batch.estimatedCompletionAt) : Number.NaN;
  if (Number.isFinite(estimated) && estimated > now) return estimated - now;
  return byRate;
}

/** `ETA 4m 40s`, `ETA –` when unknown. */
function etaText(sample: ProgressSample): string {
  const eta = etaMs(sample);
  return `ETA ${eta === undefined ? '–' : formatDuration(eta)}`;
}

/** The rate and the ETA while the batch runs; once it ended, the rate if one was observed. */
function rateAndEta(sample: ProgressSample): string[] {
  if (!batchEnded(sample.batch)) return [formatRate(sample.ratePerMinute), etaText(sample)];
  return sample.ratePerMinute === undefined ? [] : [formatRate(sample.ratePerMinute)];
}

/** The counts worth a glance beside done/total: those that are not waiting or succeeded. */
function notable(counts: BatchCounts): string[] {
  const keys = ['running', 'partial', 'failed', 'canceled', 'rejected'] as const;
  return keys.filter((key) => counts[key] > 0).map((key) => `${counts[key]} ${key}`);
}

/** The width of the bar, in cells. */
export const BAR_WIDTH = 24;

/** `[██████░░░░░░░░░░░░░░░░░░]`: the share of lines done, rounded down (full only at the end). */
export function bar(done: number, total: number, width = BAR_WIDTH): string {
  const filled = total > 0 ? Math.min(width, Math.floor((done / total) * width)) : width;
  return `[${'█'.repeat(filled)}${'░'.repeat(width - filled)}]`;
}

/**
 * The progress bar of a terminal, redrawn in place:
 * `in_progress [██████░░░░░░░░░░░░░░░░░░] 10/40  25% · 6.0/min · ETA 5m 00s · 3 running`.
 */
export function renderBatchBar(sample: ProgressSample): string {
  const { counts, status } = sample.batch;
  const done = doneOf(counts);
  const percent = counts.total > 0 ? Math.floor((done / counts.total) * 100) : 100;
  const parts = [
    `${status} ${bar(done, counts.total)} ${done}/${counts.total} ${String(percent).padStart(3)}%`,
    ...rateAndEta(sample),
    ...notable(counts),
  ];
  return parts.join(' · ');
}

/**
 * One plain progress line (stderr not a terminal), `elapsedMs` since the follower started:
 * `[  12.0s] in_progress · 10/40 done · 6.0/min · ETA 5m 00s · 3 running · 27 waiting`.
 */
export function renderBatchLine(sample: ProgressSample, elapsedMs: number): string {
  const { counts, status } = sample.batch;
  const parts = [
    `[${(elapsedMs / 1000).toFixed(1).padStart(6)}s] ${status}`,
    `${doneOf(counts)}/${counts.total} done`,
    ...rateAndEta(sample),
    ...notable(counts),
    ...(counts.waiting > 0 ? [`${counts.waiting} waiting`] : []),
  ];
  return parts.join(' · ');
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

/** The shortest span a rate is computed over: a rate from two close reads says little. */
const MIN_RATE_SPAN_MS = 2_000;

/** A plain line when only the counts moved is printed at most this often (a status change at once). */
export const PLAIN_LINE_EVERY_MS = 10_000;

/**
 * What a follower writes on stderr as it reads the batch again and again: `update` returns the
 * text to write (or nothing), `end` what closes it. On a terminal, the bar redrawn in place
 * whenever it changes; otherwise a line at the first read, at each change of status, when the
 * batch ends, and when the counts moved at most every {@link PLAIN_LINE_EVERY_MS}. The rate is
 * that of generations ended since the first read.
 */
export class BatchProgress {
  #first: { readonly at: number; readonly ended: number } | undefined;
  #drawn = '';
  #lastLine: { readonly at: number; readonly status: string; readonly done: number } | undefined;

  constructor(private readonly tty: boolean) {}

  /**
   * What has been observed by `now`: the generations ended since the first read, and their rate
   * per minute once the span is long enough to say something.
   */
  observe(now: number, counts: BatchCounts): { readonly observed: number; readonly ratePerMinute?: number } {
    const ended = endedOf(counts);
    this.#first ??= { at: now, ended };
    const observed = Math.max(0, ended - this.#first.ended);
    const span = now - this.#first.at;
    if (span < MIN_RATE_SPAN_MS) return { observed };
    return { observed, ratePerMinute: (observed / span) * 60_000 };
  }

  /** The text to write for this read of the batch at `now`, or undefined when nothing changed. */
  update(batch: BatchProgressState, now: number): string | undefined {
    const sample: ProgressSample = { batch, now, ...this.observe(now, batch.counts) };
    const started = this.#first?.at ?? now;
    if (this.tty) {
      const text = renderBatchBar(sample);
      if (text === this.#drawn) return undefined;
      this.#drawn = text;
      return `\r\x1b[2K${text}`;
    }
    const done = doneOf(batch.counts);
    const last = this.#lastLine;
    const due =
      !last ||
      last.status !== batch.status ||
      batchEnded(batch) ||
      (done !== last.done && now - last.at >= PLAIN_LINE_EVERY_MS);
    if (!due || (last && last.status === batch.status && last.done === done)) return undefined;
    this.#lastLine = { at: now, status: batch.status, done };
    return `${renderBatchLine(sample, now - started)}\n`;
  }

  /** What closes the progress: a newline after a bar, so the next output starts on its own line. */
  end(): string {
    if (!this.tty || this.#drawn === '') return '';
    this.#drawn = '';
    return '\n';
  }
}
