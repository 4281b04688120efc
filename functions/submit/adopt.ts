import { randomInt } from 'node:crypto';
import type { z } from 'zod';
import { type AdmissionQueue, RECENT_TASKS_MS } from '../shared/admission.js';
import type { Clock } from '../shared/clock.js';
import { type DashScopeClient, formatCompactCstTime } from '../shared/dashscope/client.js';
import type { ListTasksResponse, TaskStatus } from '../shared/dashscope/schemas.js';
import { describeError } from '../shared/errors.js';
import { MAX_SEED } from '../shared/generation-request.js';
import type { Logger } from '../shared/logger.js';
import { noteSubmitAttempt } from '../shared/slot-life.js';
import type { submitInputSchema, TaskState } from '../shared/workflow-state.js';
import { firstTaskState, type SubmitDeps, submitGeneration } from './submit.js';

/** Slack before the first attempt, for clock skew between the Lambda and DashScope. */
const WINDOW_SLACK_MS = 2000;

export interface OrphanSearch {
  /** When the submit whose answer was lost was sent. */
  readonly attemptAt: number;
  readonly model: string;
  /** Task ids this deployment created on the account since the attempt (and its other slots'): never adopted. */
  readonly owned: ReadonlySet<string>;
}

/** A task found by {@link findOrphan}, as the list endpoint shows it. */
export interface Orphan {
  readonly taskId: string;
  readonly status: TaskStatus;
  readonly requestId: string;
}

/**
 * After a submit that got no answer, the task it may have created: the one task of this account
 * and model, created since the attempt, that none of our generations owns. The admission queue
 * remembers every task this deployment created on the account lately, so another such task can
 * only be the lost submit's or another client's; with exactly one, it is adopted, whatever its
 * status (it may have finished meanwhile). None, several, or a failed listing: undefined, and the
 * caller submits again (the bounded cost of one extra task, as before). Never throws.
 */
export async function findOrphan(
  search: OrphanSearch,
  deps: { readonly dashscope: DashScopeClient; readonly clock: Clock; readonly logger: Logger },
): Promise<Orphan | undefined> {
  let page: ListTasksResponse;
  try {
    page = await deps.dashscope.listTasks({
      startTime: formatCompactCstTime(search.attemptAt - WINDOW_SLACK_MS),
      endTime: formatCompactCstTime(deps.clock.now()),
      modelName: search.model,
      pageSize: 100,
    });
  } catch (error) {
    deps.logger.warn('Orphan search failed; submitting again', { reason: describeError(error) });
    return undefined;
  }
  const candidates = page.data.filter(
    (task) =>
      !search.owned.has(task.task_id) && (task.model_name === undefined || task.model_name === search.model),
  );
  if (candidates.length !== 1 || page.total > page.data.length) {
    deps.logger.info('No single orphan to adopt; submitting again', { candidates: candidates.length });
    return undefined;
  }
  const [task] = candidates as [(typeof candidates)[number]];
  return {
    taskId: task.task_id,
    status: task.status,
    requestId: page.request_id,
  };
}

/** What {@link submitAdmitted} did: created a task, or adopted the orphan of a lost answer. */
export interface Submitted {
  readonly task: TaskState;
  readonly adopted: boolean;
}

/**
 * Submit with the admission slot's memory: the attempt and its seed are noted on the slot before
 * the request goes out, so a retry after a lost answer knows when to look and with which seed
 * the orphan was made. A retry adopts the orphan {@link findOrphan} finds, else submits again
 * with the same seed. No adoption while another of the account's slots has a submit in flight:
 * its task would not be told apart from the orphan.
 */
export async function submitAdmitted(
  input: z.infer<typeof submitInputSchema>,
  deps: SubmitDeps & { readonly queue?: AdmissionQueue },
): Promise<Submitted> {
  const { queue, logger } = deps;
  const slot = queue ? await queue.get(input.id).catch(() => undefined) : undefined;
  const granted = slot?.kind === 'granted' ? slot : undefined;
  const seed =
    input.request.seed ?? granted?.submitSeed ?? (deps.randomSeed ?? (() => randomInt(0, MAX_SEED - 3)))();
  if (granted?.taskId !== undefined && granted.submittedAt !== undefined) {
    // An earlier invocation created the task and noted it on the slot, but its answer never
    // reached the workflow (a Lambda service error after the function returned; a local engine
    // that stopped): carry on with that task, as it was submitted, rather than create another.
    logger.warn('Resumed the task an earlier Submit of this generation created', {
      generationId: input.id,
      taskId: granted.taskId,
    });
    const response = {
      request_id: `resumed-${granted.taskId}`,
      output: { task_id: granted.taskId, task_status: 'PENDING' as const },
    };
    const submittedAt = granted.submittedAt;
    return {
      task: firstTaskState(input, response, seed, { ...deps, clock: { now: () => submittedAt } }),
      adopted: true,
    };
  }
  if (queue && granted?.submitAttemptAt !== undefined && granted.submittedAt === undefined) {
    const others = (await queue.slots(granted.account).catch(() => [])).filter(
      (other) => other.id !== input.id,
    );
    const inFlight = others.some(
      (other) => other.submitAttemptAt !== undefined && other.taskId === undefined,
    );
    const recent = await queue
      .recentTasks(granted.account, granted.submitAttemptAt - RECENT_TASKS_MS)
      .catch(() => undefined);
    if (!inFlight && recent) {
      const owned = new Set([...recent, ...others.flatMap((other) => (other.taskId ? [other.taskId] : []))]);
      const orphan = await findOrphan(
        { attemptAt: granted.submitAttemptAt, model: input.request.model, owned },
        deps,
      );
      if (orphan) {
        logger.warn('Adopted the task of a submit whose answer was lost', {
          generationId: input.id,
          taskId: orphan.taskId,
        });
        const response = {
          request_id: orphan.requestId,
          output: { task_id: orphan.taskId, task_status: orphan.status },
        };
        return { task: firstTaskState(input, response, seed, deps), adopted: true };
      }
    }
  }
  await noteSubmitAttempt(queue, input.id, { at: deps.clock.now(), seed }, { logger });
  return { task: await submitGeneration(input, { ...deps, randomSeed: () => seed }), adopted: false };
}
