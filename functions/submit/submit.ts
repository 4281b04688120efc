import { randomInt } from 'node:crypto';
import type { z } from 'zod';
import type { Clock } from '../shared/clock.js';
import { type DashScopeClient, toSubmitBody } from '../shared/dashscope/client.js';
import type { SubmitResponse } from '../shared/dashscope/schemas.js';
import { MAX_SEED } from '../shared/generation-request.js';
import type { Logger } from '../shared/logger.js';
import { adaptivePollPolicy, type PollPolicy, pollJitter } from '../shared/poll-policy.js';
import { DEFAULT_RUN_TIME_MODEL, estimateRun, type RunTimeModel } from '../shared/run-time-estimate.js';
import { normalizeStatus, type submitInputSchema, type TaskState } from '../shared/workflow-state.js';

export interface SubmitDeps {
  readonly dashscope: DashScopeClient;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Seconds from submit until the generation fails with DeadlineExceeded. */
  readonly deadlineSeconds: number;
  /** Picks a seed when the request has none. @default a random integer in [0, MAX_SEED - 4] */
  readonly randomSeed?: () => number;
  /** What the poll policy expects a task to take. @default DEFAULT_RUN_TIME_MODEL */
  readonly runTimeModel?: RunTimeModel;
  /** When to poll first. @default adaptivePollPolicy */
  readonly policy?: PollPolicy;
}

/**
 * Creates the DashScope task for a validated request and returns the first task state.
 * A request without a seed gets a random one here, so every stored image records the seed that
 * reproduces it (image i of a batch uses seed + i, hence the headroom below MAX_SEED).
 * Throws the client's named errors; the workflow retries the retryable ones.
 */
export async function submitGeneration(
  input: z.infer<typeof submitInputSchema>,
  deps: SubmitDeps,
): Promise<TaskState> {
  const { request } = input;
  const seed = request.seed ?? (deps.randomSeed ?? (() => randomInt(0, MAX_SEED - 3)))();
  const response = await deps.dashscope.submit(toSubmitBody(request, seed));
  deps.logger.info('DashScope task created', {
    generationId: input.id,
    taskId: response.output.task_id,
    dashscopeRequestId: response.request_id,
    model: request.model,
    n: request.n,
  });
  return firstTaskState(input, response, seed, deps);
}

/**
 * The first task state of a task that exists at DashScope: the one a submit just created, or an
 * orphan adopted after a lost answer (see adopt.ts). The deadline starts now.
 */
export function firstTaskState(
  input: z.infer<typeof submitInputSchema>,
  response: SubmitResponse,
  seed: number,
  deps: Pick<SubmitDeps, 'clock' | 'deadlineSeconds' | 'runTimeModel' | 'policy'>,
): TaskState {
  const { request } = input;
  const now = deps.clock.now();
  const deadlineMs = now + deps.deadlineSeconds * 1000;
  const status = normalizeStatus(response.output.task_status);
  const taskId = response.output.task_id;
  // Stored with the task so every poll judges it by the model it was submitted under.
  const expectedRun = estimateRun(request, deps.runTimeModel ?? DEFAULT_RUN_TIME_MODEL);
  return {
    taskId,
    seed,
    submitRequestId: response.request_id,
    submittedAt: new Date(now).toISOString(),
    deadline: new Date(deadlineMs).toISOString(),
    status,
    dashscopeStatus: response.output.task_status,
    times: {},
    pollCount: 0,
    nextPollSeconds: (deps.policy ?? adaptivePollPolicy).nextPollSeconds({
      status: status === 'running' ? 'running' : 'queued',
      pollCount: 0,
      secondsUntilDeadline: deps.deadlineSeconds,
      expected: expectedRun,
      jitter: pollJitter(`${taskId}:0`),
    }),
    expectedRun,
    deadlineExceeded: false,
    lastRequestId: response.request_id,
  };
}
