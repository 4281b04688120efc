import type { Admission, AdmissionQueue, AdmissionRecord, Slot, WaitingEntry } from './admission.js';
import type { Clock } from './clock.js';
import type { Logger } from './logger.js';

/**
 * The life of one generation's place in admission, from its entry in the queue to its slot's
 * release: the one module that writes it. Every caller (Admit, the dispatcher, Submit, Poll,
 * Notify, the reconciler, the API's cancel, the local runner) goes through these transitions, so
 * each write and its condition is decided here once. Pure: over the {@link AdmissionQueue} port
 * and the dispatcher's kick ({@link Admission}). The states and who performs each transition are
 * drawn in docs/admission.md ("A slot's life"); the store's own conditions (a grant only of a
 * waiting entry, a note only on a held slot, each field once) are the adapters' contract
 * (test/contract/admission-queue.test.ts).
 */

/**
 * Where a generation stands in admission, derived from its record:
 * - `waiting`: an entry in its lane, with the token of the execution waiting in Admit;
 * - `granted`: a slot on an account, its execution resumed (or about to be), no submit attempted;
 * - `submitting`: the submit's attempt and seed are noted, no answer yet (a lost answer is
 *   adopted from here, see functions/submit/adopt.ts);
 * - `submitted`: the task is created and noted (PENDING at DashScope);
 * - `running`: its task started running at DashScope;
 * - `released`: no record: the slot was freed or the entry dropped (a generation's end).
 */
export type SlotState = 'waiting' | 'granted' | 'submitting' | 'submitted' | 'running' | 'released';

export function slotState(record: AdmissionRecord | undefined): SlotState {
  if (!record) return 'released';
  if (record.kind === 'waiting') return 'waiting';
  if (record.startedAt !== undefined) return 'running';
  if (record.submittedAt !== undefined || record.taskId !== undefined) return 'submitted';
  if (record.submitAttemptAt !== undefined) return 'submitting';
  return 'granted';
}

/** The transitions, by name, with the states they leave and reach and who performs them (docs, tests). */
export const SLOT_TRANSITIONS = {
  queueForSlot: { from: ['released', 'waiting', 'granted'], to: 'waiting', by: 'Admit' },
  grantSlot: { from: ['waiting'], to: 'granted', by: 'dispatch' },
  regrantOf: { from: ['granted'], to: 'granted', by: 'dispatch (sweep)' },
  noteSubmitAttempt: { from: ['granted'], to: 'submitting', by: 'Submit' },
  noteSubmitted: { from: ['granted', 'submitting'], to: 'submitted', by: 'Submit' },
  noteStarted: { from: ['submitted'], to: 'running', by: 'Poll' },
  giveSlotBack: { from: ['granted'], to: 'released', by: 'dispatch' },
  expireEntry: { from: ['waiting'], to: 'released', by: 'dispatch (sweep)' },
  freeLostSlot: {
    from: ['granted', 'submitting', 'submitted', 'running'],
    to: 'released',
    by: 'dispatch (sweep)',
  },
  releaseSlot: {
    from: ['waiting', 'granted', 'submitting', 'submitted', 'running'],
    to: 'released',
    by: 'Poll, Notify, reconciler, local runner',
  },
  withdrawFromQueue: {
    from: ['waiting', 'granted', 'submitting', 'submitted', 'running'],
    to: 'released',
    by: 'API cancel',
  },
} as const satisfies Record<
  string,
  { readonly from: readonly SlotState[]; readonly to: SlotState; readonly by: string }
>;

/** Where a transition that never throws reports a write that failed: the caller's own logger. */
export interface SlotLifeOptions {
  readonly logger: Pick<Logger, 'warn'>;
}

// ── waiting ──────────────────────────────────────────────────────────────────────────────────

/**
 * **Admit:** puts the generation in the queue with the token that resumes its execution
 * (released → waiting; a retried Admit's new token keeps the entry's first place; a slot whose
 * execution never attempted a submit waits again: the adapters' `enqueue`), then rings the
 * dispatcher. `onQueued` runs between the two (the caller's log line). Throws: Admit is retried.
 */
export async function queueForSlot(
  admission: Admission,
  entry: WaitingEntry,
  options: { readonly onQueued?: () => void } = {},
): Promise<void> {
  await admission.queue.enqueue(entry);
  options.onQueued?.();
  await admission.kick();
}

/**
 * **Dispatcher:** waiting → granted on `account`, only while the entry still waits with the token
 * the run read (one cancelled, or enqueued again with a new token, is skipped: false).
 */
export function grantSlot(
  queue: AdmissionQueue,
  entry: Pick<WaitingEntry, 'id' | 'token'>,
  account: string,
  grantedAt: number,
): Promise<boolean> {
  return queue.grant(entry.id, account, grantedAt, entry.token);
}

/**
 * **Dispatcher:** granted → released, when the execution a grant resumed no longer waits (stopped
 * meanwhile). Only the entry as granted (its token): one enqueued again meanwhile waits for a grant
 * of its own. No kick: the run that gives it back is the dispatcher, and whoever stopped the
 * execution releases too, and rings.
 */
export function giveSlotBack(
  queue: AdmissionQueue,
  entry: Pick<WaitingEntry, 'id' | 'token'>,
): Promise<boolean> {
  return queue.release(entry.id, entry.token);
}

/**
 * **Dispatcher's sweep:** waiting → released for an entry that waited past `maxQueueSeconds`,
 * only with the token read (false: enqueued again since, read it again). The caller then fails
 * its execution with `QueueTimeExceeded`.
 */
export function expireEntry(
  queue: AdmissionQueue,
  entry: Pick<WaitingEntry, 'id' | 'token'>,
): Promise<boolean> {
  return queue.release(entry.id, entry.token);
}

// ── granted ──────────────────────────────────────────────────────────────────────────────────

/**
 * Whether a slot's execution shows no sign of having been resumed: neither a submit attempt nor
 * a submit answer noted. The dispatcher's sweep resumes such a slot again once it is old enough.
 */
export function awaitsResume(slot: Pick<Slot, 'submittedAt' | 'submitAttemptAt'>): boolean {
  return slot.submittedAt === undefined && slot.submitAttemptAt === undefined;
}

/**
 * **Dispatcher's sweep:** granted → granted: what to resume again for a slot granted but never
 * resumed (the dispatcher stopped between recording a grant and resuming): the token of the
 * record as it is now, if it is still that grant (the same account and grant time); undefined
 * when it was released, or enqueued again since (a new token waits for a grant of its own). No
 * write: the slot is kept, its execution resumed once more.
 */
export async function regrantOf(
  queue: AdmissionQueue,
  slot: Pick<Slot, 'id' | 'account' | 'grantedAt'>,
): Promise<{ readonly token: string; readonly account: string; readonly grantedAt: number } | undefined> {
  const record = await queue.get(slot.id);
  if (record?.kind !== 'granted') return undefined;
  if (record.account !== slot.account || record.grantedAt !== slot.grantedAt) return undefined;
  return { token: record.token, account: record.account, grantedAt: record.grantedAt };
}

/**
 * **Submit:** granted → submitting: the attempt's time and seed, noted before the request goes
 * out, so a retry after a lost answer knows when to look and which seed made the orphan. Never
 * throws (warns): a submit goes out without it.
 */
export async function noteSubmitAttempt(
  queue: AdmissionQueue | undefined,
  id: string,
  attempt: { readonly at: number; readonly seed: number },
  options: SlotLifeOptions,
): Promise<void> {
  await queue
    ?.note(id, { submitAttemptAt: attempt.at, submitSeed: attempt.seed })
    .catch((error: unknown) =>
      options.logger.warn('Submit attempt not noted on the slot', { reason: String(error) }),
    );
}

/**
 * **Submit:** granted or submitting → submitted: the task on the slot first, then among the
 * account's recent tasks (an orphan search never mistakes it for a lost one). In this order, a
 * stop between the two leaves the slot knowing its task, and a re-run carries on with it; the
 * other order left a task no search would adopt. Never throws (warns).
 */
export async function noteSubmitted(
  queue: AdmissionQueue | undefined,
  id: string,
  task: { readonly account: string; readonly taskId: string },
  options: SlotLifeOptions & { readonly clock: Clock },
): Promise<void> {
  if (!queue) return;
  try {
    await queue.note(id, { submittedAt: options.clock.now(), taskId: task.taskId });
    await queue.recordTask(task.account, task.taskId, options.clock.now());
  } catch (error) {
    options.logger.warn('Submit not noted on the slot', { reason: String(error) });
  }
}

/**
 * **Poll:** submitted → running: when the task started at DashScope (the dispatcher's estimates).
 * Never throws (warns).
 */
export async function noteStarted(
  queue: AdmissionQueue | undefined,
  id: string,
  startedAt: number,
  options: SlotLifeOptions,
): Promise<void> {
  await queue
    ?.note(id, { startedAt })
    .catch((error: unknown) => options.logger.warn('Start not noted on the slot', { reason: String(error) }));
}

// ── released ─────────────────────────────────────────────────────────────────────────────────

/**
 * **Poll** (the task ended at DashScope), **Notify**, **the reconciler** (an execution ended:
 * stopped, timed out, failed) and **the local runner** (an execution ended, or a recovering
 * engine recorded an end): any state → released, then rings the dispatcher, which grants the
 * next one. Idempotent: several of these run for one generation, each harmless after the first,
 * and each rings (an earlier one's kick may have been lost). Never throws: a release that fails
 * is found by the dispatcher's sweep ({@link freeLostSlot}).
 */
export async function releaseSlot(
  admission: Admission | undefined,
  id: string,
  options: SlotLifeOptions,
): Promise<void> {
  if (!admission) return;
  try {
    await admission.queue.release(id);
    await admission.kick();
  } catch (error) {
    options.logger.warn('Admission slot not released; the dispatcher sweep will', {
      generationId: id,
      reason: String(error),
    });
  }
}

/**
 * **The API's cancel:** any state → released, before the execution is stopped, so no grant can
 * reach it after this. Throws (the cancel fails before it stops anything). No kick: the API has no
 * doorbell; the stop's own release (the reconciler, on ABORTED) rings the dispatcher.
 */
export async function withdrawFromQueue(queue: AdmissionQueue | undefined, id: string): Promise<void> {
  await queue?.release(id);
}

/**
 * **Dispatcher's sweep:** held → released for an old slot whose generation the index shows ended:
 * its own release was lost. No kick: the sweeping run grants the freed slot itself.
 */
export function freeLostSlot(queue: AdmissionQueue, id: string): Promise<boolean> {
  return queue.release(id);
}
