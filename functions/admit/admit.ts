import type * as z from 'zod';
import { type Admission, DEFAULT_LANE } from '../shared/admission.js';
import type { Clock } from '../shared/clock.js';
import type { Logger } from '../shared/logger.js';
import { estimateRun, type RunTimeModel } from '../shared/run-time-estimate.js';
import { queueForSlot } from '../shared/slot-life.js';
import type { admitInputSchema } from '../shared/workflow-state.js';

export interface AdmitDeps {
  readonly admission: Admission;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly runTimeModel: RunTimeModel;
}

/**
 * Puts a validated generation in the admission queue, in its lane (the request's `priority`; a
 * request that names none came another way than the API, which always names one: batch), with
 * the task token that resumes its execution, then rings the dispatcher. The execution waits in the
 * Admit state until the dispatcher grants it a slot: no transitions, no polling meanwhile.
 */
export async function admitGeneration(
  input: z.infer<typeof admitInputSchema>,
  deps: AdmitDeps,
): Promise<void> {
  const lane = input.request.priority ?? DEFAULT_LANE.other;
  const entry = {
    id: input.id,
    lane,
    enqueuedAt: deps.clock.now(),
    expectedRunSeconds: estimateRun(input.request, deps.runTimeModel).seconds,
    token: input.taskToken,
  };
  await queueForSlot(deps.admission, entry, {
    onQueued: () => deps.logger.info('Generation queued for admission', { generationId: input.id, lane }),
  });
}
