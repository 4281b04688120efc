import {
  type AdmissionQueue,
  type AdmissionSettings,
  type ExecutionResumer,
  LANES,
  type Lane,
  planGrants,
  QUEUE_TIMEOUT_ERROR,
  RECENT_TASKS_MS,
  type Slot,
  type WaitingEntry,
} from '../shared/admission.js';
import type { Clock, Sleep } from '../shared/clock.js';
import type { GenerationIndex } from '../shared/generation-index.js';
import type { Logger } from '../shared/logger.js';

export interface DispatchDeps {
  readonly queue: AdmissionQueue;
  readonly resumer: ExecutionResumer;
  /** To tell a slot whose generation ended (its release was lost) from one still running. */
  readonly index?: GenerationIndex;
  readonly settings: AdmissionSettings;
  readonly clock: Clock;
  readonly sleep: Sleep;
  readonly logger: Logger;
  /**
   * A granted slot whose execution has not submitted after this long is granted again (the
   * dispatcher stopped between recording a grant and resuming its execution). @default 60 s
   */
  readonly regrantAfterMs?: number;
  /** A slot this old is checked against the index, and freed if its generation ended. @default 10 min */
  readonly checkSlotAfterMs?: number;
}

/** What one run did, for its log line and the tests. */
export interface DispatchReport {
  readonly granted: readonly { readonly id: string; readonly account: string }[];
  /** Entries that waited past `maxQueueSeconds` and were failed. */
  readonly expired: readonly string[];
  /** Slots freed because their generation ended without releasing them. */
  readonly freed: readonly string[];
  /** Grants sent again to executions that had not resumed. */
  readonly regranted: readonly string[];
  /** Entries whose execution no longer waited when granted (stopped meanwhile): dropped. */
  readonly gone: readonly string[];
}

const FINAL = new Set(['succeeded', 'failed', 'canceled', 'partial']);

/**
 * One run of the dispatcher: sweep, then grant every free slot.
 *
 * 1. **Sweep.** Entries that waited longer than `maxQueueSeconds` fail with `QueueTimeExceeded`.
 *    A slot granted but not submitted for a while is resumed again (a crash between the grant and
 *    the resume; a second resume of a resumed execution is refused, harmlessly). An old slot
 *    whose generation the index shows ended is freed (its release was lost).
 * 2. **Grant.** {@link planGrants} over the accounts' slots and the lanes' heads; each grant waits
 *    for its submit spacing, is recorded (a conditional write: an entry cancelled meanwhile is
 *    skipped), then resumes its execution with the account. An execution that no longer waits
 *    gives its slot back at once.
 *
 * Runs one at a time (reserved concurrency 1 on AWS, a serial loop locally); every decision is
 * re-derived from the store, so a lost run or a crash loses nothing that the next run does not find.
 */
export async function dispatch(deps: DispatchDeps): Promise<DispatchReport> {
  const { queue, settings, clock, logger } = deps;
  const report = {
    granted: [] as { id: string; account: string }[],
    expired: [] as string[],
    freed: [] as string[],
    regranted: [] as string[],
    gone: [] as string[],
  };
  const maxQueueMs = settings.maxQueueSeconds * 1000;

  for (const lane of LANES) {
    for (;;) {
      const [oldest] = await queue.waiting(lane, 1);
      if (!oldest || clock.now() - oldest.enqueuedAt < maxQueueMs) break;
      await queue.release(oldest.id);
      await deps.resumer.fail(
        oldest.token,
        QUEUE_TIMEOUT_ERROR,
        `Waited ${Math.round((clock.now() - oldest.enqueuedAt) / 1000)} s in the admission queue, longer than maxQueueSeconds (${settings.maxQueueSeconds})`,
      );
      report.expired.push(oldest.id);
    }
  }

  const slots: Slot[] = [];
  for (const account of settings.accounts) {
    await queue.pruneTasks(account.name, clock.now() - RECENT_TASKS_MS);
    for (const slot of await queue.slots(account.name)) {
      const age = clock.now() - slot.grantedAt;
      // Not even an attempt: the execution never reached Submit, so it was never resumed.
      const neverResumed = slot.submittedAt === undefined && slot.submitAttemptAt === undefined;
      if (neverResumed && age >= (deps.regrantAfterMs ?? 60_000)) {
        const record = await queue.get(slot.id);
        if (record) {
          await deps.resumer.resume(record.token, grantOf(slot.account, slot.grantedAt));
          report.regranted.push(slot.id);
        }
      }
      if (age >= (deps.checkSlotAfterMs ?? 600_000) && deps.index) {
        const generation = await deps.index.get(slot.id);
        if (generation && FINAL.has(generation.status)) {
          await queue.release(slot.id);
          report.freed.push(slot.id);
          continue;
        }
      }
      slots.push(slot);
    }
  }

  const free = settings.accounts.reduce(
    (total, account) =>
      total + Math.max(0, account.depth - slots.filter((s) => s.account === account.name).length),
    0,
  );
  if (free > 0) {
    const waiting = {} as Record<Lane, WaitingEntry[]>;
    for (const lane of LANES) waiting[lane] = [...(await queue.waiting(lane, free))];
    const plan = planGrants({
      now: clock.now(),
      accounts: settings.accounts,
      slots,
      waiting,
      state: await queue.readState(),
      rules: { batchEvery: settings.batchEvery },
    });
    const tokens = new Map(LANES.flatMap((lane) => waiting[lane].map((entry) => [entry.id, entry.token])));
    for (const grant of plan.grants) {
      const delay = grant.atMs - clock.now();
      if (delay > 0) await deps.sleep(delay);
      const grantedAt = clock.now();
      if (!(await queue.grant(grant.entry.id, grant.account, grantedAt))) continue;
      const outcome = await deps.resumer.resume(
        tokens.get(grant.entry.id) as string,
        grantOf(grant.account, grantedAt),
      );
      if (outcome === 'gone') {
        await queue.release(grant.entry.id);
        report.gone.push(grant.entry.id);
      } else {
        report.granted.push({ id: grant.entry.id, account: grant.account });
      }
    }
    if (plan.grants.length > 0) await queue.writeState(plan.state);
  }
  if (Object.values(report).some((list) => list.length > 0)) {
    logger.info('Dispatched', {
      granted: report.granted.length,
      expired: report.expired,
      freed: report.freed,
      regranted: report.regranted,
      gone: report.gone,
    });
  }
  return report;
}

const grantOf = (account: string, grantedAt: number) => ({
  account,
  grantedAt: new Date(grantedAt).toISOString(),
});
