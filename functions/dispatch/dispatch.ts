import { randomUUID } from 'node:crypto';
import {
  type AccountPace,
  type AdmissionQueue,
  type AdmissionSettings,
  DISPATCHER_LEASE_MS,
  type DispatcherLease,
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
import {
  awaitsResume,
  expireEntry,
  freeLostSlot,
  giveSlotBack,
  grantSlot,
  regrantOf,
} from '../shared/slot-life.js';

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
  /**
   * Whether this run still holds the dispatcher's lease for `forMs` more (renewing it when it
   * runs low), asked before each step that writes; false stops the run: another one took over.
   * {@link dispatchInTurn} supplies it. @default always (the local dispatcher, one per process)
   */
  readonly holding?: (forMs: number) => Promise<boolean>;
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
 * 1. **Sweep.** Entries at the head of their lane that waited longer than `maxQueueSeconds` fail
 *    with `QueueTimeExceeded` (in the fair order an older entry may wait behind younger ones: the
 *    Admit state's own timeout, 10 minutes later, ends it; docs/admission.md, "Deadlines").
 *    A slot granted but not submitted for a while is resumed again (a crash between the grant and
 *    the resume; a second resume of a resumed execution is refused, harmlessly). An old slot
 *    whose generation the index shows ended is freed (its release was lost).
 * 2. **Grant.** {@link planGrants} over the accounts' slots and the lanes' heads (in each lane's
 *    fair order: round-robin across its batches), which also moves each lane's clock and times
 *    each account's pace (the slots it freed while full with entries waiting); each grant waits
 *    for its submit spacing, is recorded (a conditional write: an entry cancelled meanwhile is
 *    skipped), then resumes its execution with the account. An execution that no longer waits
 *    gives its slot back at once.
 *
 * Runs one at a time ({@link dispatchInTurn}'s lease on AWS, a serial loop locally); every
 * decision is re-derived from the store, so a lost run or a crash loses nothing that the next run
 * does not find. A grant and the release of a gone execution are conditional on the token read:
 * an entry enqueued again meanwhile (a retried Admit) is granted with its new token, on a later run.
 */
export async function dispatch(deps: DispatchDeps): Promise<DispatchReport> {
  const { queue, settings, clock, logger } = deps;
  const holding = async (forMs = 0) => {
    if (!deps.holding || (await deps.holding(forMs))) return true;
    logger.warn('Dispatcher lease lost: this run stops, the one that took it over goes on', {});
    return false;
  };
  const report = {
    granted: [] as { id: string; account: string }[],
    expired: [] as string[],
    freed: [] as string[],
    regranted: [] as string[],
    gone: [] as string[],
  };
  const maxQueueMs = settings.maxQueueSeconds * 1000;

  // Each entry once a run: the queue's index may still list one just released.
  const tried = new Set<string>();
  for (const lane of LANES) {
    for (;;) {
      if (!(await holding())) return report;
      const [first] = await queue.waiting(lane, 1);
      if (!first || clock.now() - first.enqueuedAt < maxQueueMs) break;
      if (tried.has(`${first.id}#${first.token}`)) break;
      tried.add(`${first.id}#${first.token}`);
      // Enqueued again since it was read (another token): read it again.
      if (!(await expireEntry(queue, first))) continue;
      await deps.resumer.fail(
        first.token,
        QUEUE_TIMEOUT_ERROR,
        `Waited ${Math.round((clock.now() - first.enqueuedAt) / 1000)} s in the admission queue, longer than maxQueueSeconds (${settings.maxQueueSeconds})`,
      );
      report.expired.push(first.id);
    }
  }

  const slots: Slot[] = [];
  for (const account of settings.accounts) {
    await queue.pruneTasks(account.name, clock.now() - RECENT_TASKS_MS);
    for (const slot of await queue.slots(account.name)) {
      if (!(await holding())) return report;
      const age = clock.now() - slot.grantedAt;
      // Not even an attempt: the execution never reached Submit, so it was never resumed.
      if (awaitsResume(slot) && age >= (deps.regrantAfterMs ?? 60_000)) {
        // Still this grant: one enqueued again since (a new token) waits for a grant of its own.
        const regrant = await regrantOf(queue, slot);
        if (regrant) {
          await deps.resumer.resume(regrant.token, grantOf(regrant.account, regrant.grantedAt));
          report.regranted.push(slot.id);
        }
      }
      if (age >= (deps.checkSlotAfterMs ?? 600_000) && deps.index) {
        const generation = await deps.index.get(slot.id);
        if (generation && FINAL.has(generation.status)) {
          await freeLostSlot(queue, slot.id);
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
    // One more than the free slots: whether entries still wait after the grants (the accounts' pace).
    const waiting = {} as Record<Lane, WaitingEntry[]>;
    for (const lane of LANES) waiting[lane] = [...(await queue.waiting(lane, free + 1))];
    const state = await queue.readState();
    const plan = planGrants({
      now: clock.now(),
      accounts: settings.accounts,
      slots,
      waiting,
      state,
      rules: { batchEvery: settings.batchEvery },
    });
    const tokens = new Map(LANES.flatMap((lane) => waiting[lane].map((entry) => [entry.id, entry.token])));
    let stopped = false;
    for (const grant of plan.grants) {
      const delay = Math.max(0, grant.atMs - clock.now());
      // The lease must outlast the wait and the grant's write: the plan holds only while no other run grants.
      if (!(await holding(delay))) {
        stopped = true;
        break;
      }
      if (delay > 0) await deps.sleep(delay);
      const grantedAt = clock.now();
      const entry = { id: grant.entry.id, token: tokens.get(grant.entry.id) as string };
      if (!(await grantSlot(queue, entry, grant.account, grantedAt))) continue;
      const outcome = await deps.resumer.resume(entry.token, grantOf(grant.account, grantedAt));
      if (outcome === 'gone') {
        // Only the entry as read: one enqueued again meanwhile (a new token) waits for its own grant.
        await giveSlotBack(queue, entry);
        report.gone.push(grant.entry.id);
      } else {
        report.granted.push({ id: grant.entry.id, account: grant.account });
      }
    }
    // After its grants; without any, only when the accounts' pace changed (a backlog ended).
    const paceChanged = settings.accounts.some(
      ({ name }) => !samePace(plan.state.pace?.[name], state.pace?.[name]),
    );
    if ((plan.grants.length > 0 || paceChanged) && !stopped) await queue.writeState(plan.state);
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

const samePace = (a: AccountPace | undefined, b: AccountPace | undefined) =>
  a?.freed === b?.freed && a?.overMs === b?.overMs && a?.fullSince === b?.fullSince;

const grantOf = (account: string, grantedAt: number) => ({
  account,
  grantedAt: new Date(grantedAt).toISOString(),
});

/** What {@link dispatchInTurn} adds to a run: the lease that makes runs take turns. */
export interface TurnDeps {
  readonly lease: DispatcherLease;
  /** This turn's owner token. @default a random UUID */
  readonly owner?: string;
  /** @default {@link DISPATCHER_LEASE_MS} */
  readonly leaseMs?: number;
  /** The time left to this process (on Lambda, to the invocation). @default unbounded */
  readonly remainingMs?: () => number;
  /** No further run starts with less than this left: the lease is handed off instead. @default 20 s */
  readonly reserveMs?: number;
}

/** What one turn did. */
export interface TurnReport {
  /**
   * `released`: it ran until no request was left. `requested`: another run held the lease; it
   * runs once more for this one. `handedOff`: out of time (or a run failed), the lease given up
   * at once. `lost`: the lease ran out during a run and another took it over. `busy`: neither
   * taken nor requested after a few tries (the one-minute sweep runs it).
   */
  readonly outcome: 'released' | 'requested' | 'handedOff' | 'lost' | 'busy';
  readonly runs: readonly DispatchReport[];
}

/** Tries at taking the lease or leaving a request with its holder, which may end in between. */
const TAKE_ATTEMPTS = 5;

/**
 * One invocation of the dispatcher: {@link dispatch} runs, one at a time over the store, without
 * reserved concurrency (docs/admission.md, "One run at a time").
 *
 * 1. **Take the lease** (a conditional write: free, or its holder's ran out). If another run
 *    holds it, leave a request on it and return at once: that run makes one more run for this one.
 * 2. **Run**, renewing the lease while the run lasts (before each write that depends on the
 *    plan); a run whose lease was taken over stops.
 * 3. **Finish:** release the lease if no request came (one conditional write, so a request cannot
 *    slip in between the check and the release); else clear the request and run again.
 */
export async function dispatchInTurn(deps: DispatchDeps & TurnDeps): Promise<TurnReport> {
  const { lease, clock, logger } = deps;
  const owner = deps.owner ?? randomUUID();
  const leaseMs = deps.leaseMs ?? DISPATCHER_LEASE_MS;
  const until = (forMs = 0) => clock.now() + forMs + leaseMs;
  let heldUntil = until();
  for (let attempt = 1; !(await lease.take(owner, clock.now(), heldUntil)); attempt++) {
    if (await lease.request(clock.now())) return { outcome: 'requested', runs: [] };
    if (attempt >= TAKE_ATTEMPTS) {
      logger.warn('Dispatcher lease neither taken nor requested; the sweep will run', { attempts: attempt });
      return { outcome: 'busy', runs: [] };
    }
    heldUntil = until();
  }
  // A lease not run out is still this turn's (a take needs it run out): renewed when under half is left.
  const holding = async (forMs: number) => {
    if (heldUntil - clock.now() >= forMs + leaseMs / 2) return true;
    const next = until(forMs);
    if (!(await lease.renew(owner, next))) return false;
    heldUntil = next;
    return true;
  };
  const runs: DispatchReport[] = [];
  try {
    for (;;) {
      runs.push(await dispatch({ ...deps, holding }));
      if (deps.remainingMs && deps.remainingMs() < (deps.reserveMs ?? 20_000)) {
        // A request still pending is run by whoever takes the lease next: a kick, or the sweep.
        await lease.handOff(owner);
        return { outcome: 'handedOff', runs };
      }
      heldUntil = until();
      const end = await lease.finish(owner, heldUntil);
      if (end !== 'again') return { outcome: end, runs };
    }
  } catch (error) {
    // The next kick need not wait for the lease to run out; the run fails as before.
    await lease.handOff(owner).catch(() => undefined);
    throw error;
  }
}
