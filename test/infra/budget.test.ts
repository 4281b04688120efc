import { beforeAll, describe, expect, it } from 'vitest';
import { STATE } from '../../infra/constructs/workflow.js';
import { stateMachineDefinition } from '../../local/runner.js';
import { synthesize } from './template.js';

/**
 * The time budget, computed from the synthesized definition alone (not from the constants that
 * built it): the execution timeout must never fire before the workflow's own failure path, so the
 * longest path through the states, every retry spent, must fit inside `TimeoutSeconds`.
 */
type Json = Record<string, any>;

/** ASL's defaults for a Retrier's fields. */
const ASL_DEFAULT = { IntervalSeconds: 1, MaxAttempts: 3, BackoffRate: 2 };

/** The longest a retrier waits in all: every retry's interval before jitter, capped at MaxDelaySeconds. */
function retrierWaits(retrier: Json): number {
  const { IntervalSeconds, MaxAttempts, BackoffRate } = { ...ASL_DEFAULT, ...retrier };
  const cap = retrier.MaxDelaySeconds ?? Number.POSITIVE_INFINITY;
  let total = 0;
  for (let k = 0; k < MaxAttempts; k++) total += Math.min(IntervalSeconds * BackoffRate ** k, cap);
  return total;
}

/**
 * A callback Task's (Admit's) worst case: its retries follow a failed invocation, which fails
 * before the wait starts, so each retried attempt is at most its function's timeout plus the
 * invoke's margin; the one attempt that waits takes at most the Task's timeout. Holds only while
 * no retrier catches the Task's own timeout, which the test below checks.
 */
function callbackWorstCase(state: Json, functionTimeout: number): number {
  const retriers: Json[] = state.Retry ?? [];
  const retries = retriers.reduce((sum, r) => sum + (r.MaxAttempts ?? ASL_DEFAULT.MaxAttempts), 0);
  return (
    state.TimeoutSeconds +
    retries * (functionTimeout + 30) +
    retriers.reduce((sum, r) => sum + retrierWaits(r), 0)
  );
}

/** A Task's worst case: its timeout × every attempt (each retrier counts its own), plus every wait. */
function taskWorstCase(state: Json): number {
  const retriers: Json[] = state.Retry ?? [];
  const attempts = 1 + retriers.reduce((sum, r) => sum + (r.MaxAttempts ?? ASL_DEFAULT.MaxAttempts), 0);
  return state.TimeoutSeconds * attempts + retriers.reduce((sum, r) => sum + retrierWaits(r), 0);
}

type Synthesized = ReturnType<typeof read>;

function read(generation: Record<string, unknown>) {
  const { template } = synthesize(generation);
  const json = template.toJSON() as { Resources: Record<string, Json> };
  const definition = stateMachineDefinition(json as never) as unknown as Json;
  const tasks = Object.entries(definition.States as Record<string, Json>).filter(
    ([, state]) => state.Type === 'Task',
  );
  const functionTimeout = (state: Json): number => {
    // A callback Task (Admit) names its function in its parameters.
    const arn = String(state.Resource).endsWith('.waitForTaskToken')
      ? String(state.Parameters?.FunctionName)
      : state.Resource;
    const logicalId = /function:(.+)$/.exec(arn)?.[1] ?? '';
    return json.Resources[logicalId]?.Properties?.Timeout;
  };
  return { definition, tasks: Object.fromEntries(tasks), functionTimeout };
}

const CONFIGS: Record<string, Record<string, unknown>> = {
  'the default deadline': {},
  'the shortest deadline': { deadlineSeconds: 60 },
  'the longest deadline, reserved concurrency and a default model': {
    deadlineSeconds: 86_400,
    reservedConcurrency: { poll: 5, persist: 2 },
    defaultModel: 'stable-diffusion-3.5-large-turbo',
  },
};

const bySetting = new Map<Record<string, unknown>, Synthesized>();
const synthesized = (generation: Record<string, unknown>): Synthesized => {
  const known = bySetting.get(generation);
  if (!known) throw new Error('synthesized in beforeAll');
  return known;
};

// Three syntheses with cdk-nag: minutes on a busy machine, so no tighter bound than this.
beforeAll(() => {
  for (const generation of Object.values(CONFIGS)) bySetting.set(generation, read(generation));
}, 600_000);

describe('the time budget', () => {
  it('covers every Task state of the workflow (a new Task must join the sum below)', () => {
    const { tasks } = synthesized(CONFIGS['the default deadline'] as Record<string, unknown>);

    expect(Object.keys(tasks).sort()).toEqual(
      [
        STATE.admit,
        STATE.submit,
        STATE.poll,
        STATE.persist,
        STATE.notifySucceeded,
        STATE.notifyFailed,
        STATE.notifySucceededLastAttempt,
        STATE.notifyFailedLastAttempt,
      ].sort(),
    );
  });

  it.each(Object.entries(CONFIGS))(
    'gives every Task a timeout longer than its function’s, so the function’s own timeout comes first (%s)',
    (_name, generation) => {
      const { tasks, functionTimeout } = synthesized(generation);
      for (const [name, state] of Object.entries(tasks)) {
        expect(functionTimeout(state), name).toBeGreaterThan(0);
        expect(state.TimeoutSeconds, name).toBeGreaterThan(functionTimeout(state));
      }
    },
  );

  it.each(Object.entries(CONFIGS))(
    'bounds every retrier: a cap on its delay, full jitter (%s)',
    (_name, generation) => {
      const { tasks } = synthesized(generation);
      for (const [name, state] of Object.entries(tasks)) {
        for (const retrier of state.Retry as Json[]) {
          expect(retrier.MaxDelaySeconds, `${name} ${retrier.ErrorEquals}`).toBeGreaterThan(0);
          expect(retrier.JitterStrategy, `${name} ${retrier.ErrorEquals}`).toBe('FULL');
        }
      }
    },
  );

  it.each(Object.entries(CONFIGS))(
    'fits the longest path, Submit’s retries + deadline + the last Poll + Persist + Notify and its last attempt, inside the execution timeout (%s)',
    (_name, generation) => {
      const { definition, tasks, functionTimeout } = synthesized(generation);
      const deadline = Number(generation.deadlineSeconds ?? 3600);
      const worst = (name: string) => taskWorstCase(tasks[name] as Json);
      const admit = tasks[STATE.admit] as Json;
      // The wait in the admission queue comes first, then Submit's retries, which run before the
      // deadline's clock starts (Submit sets it). The Wait ⇄ Poll loop ends at the deadline: the
      // policy never waits past it, and the Poll that sees it (its retries spent) is followed by
      // Persist or the failure path, then one Notify and, when EventBridge kept refusing its event,
      // Notify's last attempt.
      const longest =
        callbackWorstCase(admit, functionTimeout(admit)) +
        worst(STATE.submit) +
        deadline +
        worst(STATE.poll) +
        worst(STATE.persist) +
        Math.max(
          worst(STATE.notifySucceeded) + worst(STATE.notifySucceededLastAttempt),
          worst(STATE.notifyFailed) + worst(STATE.notifyFailedLastAttempt),
        );

      expect(longest).toBeLessThanOrEqual(definition.TimeoutSeconds);
    },
  );

  it('never retries the admission wait’s own timeout, so a wait happens once (the sum above relies on it)', () => {
    const { tasks } = synthesized(CONFIGS['the default deadline'] as Record<string, unknown>);
    const admit = tasks[STATE.admit] as Json;
    expect(admit.Resource).toMatch(/lambda:invoke\.waitForTaskToken$/);
    for (const retrier of admit.Retry as Json[]) {
      expect(retrier.ErrorEquals).not.toContain('States.Timeout');
      expect(retrier.ErrorEquals).not.toContain('States.ALL');
    }
    // 7 days in the queue, plus a margin: the dispatcher fails an expired entry first.
    expect(admit.TimeoutSeconds).toBeGreaterThan(7 * 24 * 3600);
  });
});
