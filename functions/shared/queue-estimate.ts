import {
  type AdmissionSettings,
  type DispatcherState,
  grantsAhead,
  type Lane,
  type LaneCounters,
  meanRunSeconds,
  type QueuePosition,
  singlesIn,
  startFromRunners,
  waitingIn,
} from './admission.js';
import { generationRequestSchema } from './generation-request.js';
import { estimateRun, type RunTimeModel } from './run-time-estimate.js';

/**
 * The API's estimates of the queue, pure: where a waiting generation stands and when it should
 * start, and when a batch should end. The API calls them with one `standing` read (the lanes'
 * counters and the dispatcher's state), the poll simulation (bench/poll-sim) with its simulated
 * dispatcher's, so the benchmark measures this very code. How they are made and how exact they
 * are: docs/admission.md ("Seeing the queue").
 *
 * Every estimate counts grants by the lane rules ({@link grantsAhead}) and times them by what
 * really limits the rate: each account's runner is free when the dispatcher last planned it
 * ({@link DispatcherState.runnersFreeAt}), then takes one grant every interval of its observed
 * pace ({@link DispatcherState.pace}: the slots it freed while full with entries waiting), or, before
 * any was observed, of the mean expected run of the entries waiting (Admit's run-time model),
 * never faster than its submit spacing.
 */

/** What the estimates read: the lanes and the dispatcher's state as of one read, and the settings. */
export interface QueueView {
  readonly now: number;
  readonly lanes: Readonly<Record<Lane, LaneCounters>>;
  readonly state: DispatcherState;
  readonly settings: Pick<AdmissionSettings, 'accounts' | 'batchEvery'>;
}

const otherLane = (lane: Lane): Lane => (lane === 'interactive' ? 'batch' : 'interactive');

/**
 * A place in `lane` behind `aheadInLane` entries of it: the grants before its own by the lane rules
 * (`position`), and when its task should start: the (`position` + 1)-th start on the accounts'
 * runners at their pace. On an account whose pace was never observed, each run ahead takes the
 * mean expected run of the entries waiting ({@link meanRunSeconds}: theirs, not its own), or
 * `runSeconds` (its own estimate) when the lanes do not sum them.
 */
export function queuePlace(
  view: QueueView,
  place: { readonly lane: Lane; readonly aheadInLane: number; readonly runSeconds: number },
): QueuePosition {
  const position = grantsAhead({
    lane: place.lane,
    aheadInLane: place.aheadInLane,
    otherLane: waitingIn(view.lanes[otherLane(place.lane)]),
    state: view.state,
    rules: view.settings,
  });
  const { startMs } = startFromRunners({
    now: view.now,
    accounts: view.settings.accounts,
    runnersFreeAt: view.state.runnersFreeAt,
    pace: view.state.pace,
    ahead: position,
    typicalRunSeconds: meanRunSeconds(view.lanes) ?? place.runSeconds,
  });
  return {
    lane: place.lane,
    position,
    estimatedStartAt: new Date(Math.max(view.now, startMs)).toISOString(),
  };
}

/**
 * Entries of its lane ahead of a batch's last waiting line, `waiting` lines from now: in the fair
 * order the batch takes one line a round, so its last line is `waiting` rounds after the lane's
 * clock, behind `width` lines a round (the batches that share the lane: each gets ~1/width of it;
 * one more while none of its own lines was served, since `width` counts the last round's) and
 * every single waiting; at most every entry of the lane, or of the batch's own lines when Admit
 * has not reached them all yet.
 */
export function lastLineAhead(view: QueueView, lane: Lane, waiting: number, joined = true): number {
  if (waiting <= 0) return 0;
  const counters = view.lanes[lane];
  const width = (view.state.rounds?.[lane]?.width ?? 0) + (joined ? 0 : 1);
  const fair = singlesIn(counters) + Math.max(1, width) * (waiting - 1);
  return Math.min(fair, Math.max(waitingIn(counters), waiting) - 1);
}

/**
 * When a batch's last generation should end, ms since the epoch: its last waiting line starts after
 * the grants ahead of it ({@link lastLineAhead}, then the lane rules) and runs one interval of the
 * account it falls to; with none waiting, when the first runner frees (its running lines end).
 * Undefined when nothing of it is left.
 */
export function batchCompletionMs(
  view: QueueView,
  batch: {
    readonly lane: Lane;
    /** Its lines not started yet (the batch's `waiting` count: in the queue, or not admitted yet). */
    readonly waiting: number;
    readonly running: number;
    /**
     * Its lines that ended (succeeded, partial, failed, canceled); none with none running: its
     * lines are not in the lane's last round yet ({@link lastLineAhead}). @default some
     */
    readonly ended?: number;
    /**
     * The run-time model's run of a typical line: on an account whose pace was never observed,
     * when the lanes do not sum their entries' expected runs ({@link meanRunSeconds}).
     */
    readonly typicalRunSeconds: number;
  },
): number | undefined {
  if (batch.waiting + batch.running <= 0) return undefined;
  const position =
    batch.waiting > 0
      ? grantsAhead({
          lane: batch.lane,
          aheadInLane: lastLineAhead(view, batch.lane, batch.waiting, batch.running + (batch.ended ?? 1) > 0),
          otherLane: waitingIn(view.lanes[otherLane(batch.lane)]),
          state: view.state,
          rules: view.settings,
        })
      : 0;
  const { startMs, runMs } = startFromRunners({
    now: view.now,
    accounts: view.settings.accounts,
    runnersFreeAt: view.state.runnersFreeAt,
    pace: view.state.pace,
    ahead: position,
    typicalRunSeconds: meanRunSeconds(view.lanes) ?? batch.typicalRunSeconds,
  });
  const start = Math.max(view.now, startMs);
  return batch.waiting > 0 ? start + runMs : start;
}

/** The request a batch's completion assumes for each line before any pace is observed: the defaults. */
const TYPICAL_REQUEST = generationRequestSchema.parse({ prompt: 'typical' });

/** The run-time model's run of a {@link TYPICAL_REQUEST}, seconds: {@link batchCompletionMs}'s `typicalRunSeconds`. */
export const typicalRunSeconds = (model: RunTimeModel): number => estimateRun(TYPICAL_REQUEST, model).seconds;
