import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { StackConfig } from '../../infra/config.js';
import { STATE } from '../../infra/constructs/workflow.js';
import { stateMachineDefinition } from '../../local/runner.js';
import { synthesizeStack } from '../../local/synth.js';
import { type DeploymentSizing, deploymentSizing } from './all-in.js';

/**
 * What one execution of the generation workflow costs in Step Functions terms, read from the
 * state machine the CDK app synthesizes (the very definition `cdk deploy` ships), so the simulation
 * counts the workflow as it is, not as a copy of it.
 *
 * How Step Functions counts, for this workflow:
 * - **State transitions** (billed): one each time a state is entered, and one more for each retry
 *   of a Task ("including retries", says the pricing page).
 * - **History events** (the 25,000-per-execution limit): `ExecutionStarted` and
 *   `ExecutionSucceeded`, then per state:
 *   - Pass, Wait, Choice, Succeed: `…StateEntered` and `…StateExited`, 2 events;
 *   - a Lambda Task: `TaskStateEntered`, `LambdaFunctionScheduled`, `LambdaFunctionStarted`,
 *     `LambdaFunctionSucceeded`, `TaskStateExited`, 5 events (an optimized integration has
 *     `TaskScheduled`, `TaskStarted`, `TaskSucceeded` instead of the Lambda three: also 5);
 *   - each retry of a Lambda Task adds `LambdaFunctionFailed`, `LambdaFunctionScheduled` and
 *     `LambdaFunctionStarted`: 3 events.
 * - One poll loop is Wait → Poll → Check status: 3 transitions and 2 + 5 + 2 = 9 events.
 */
export interface WorkflowShape {
  /** States from the start to the loop, in order (Init, Admit, Submit). */
  readonly before: readonly StepCost[];
  /**
   * Admit's place in `before`, and whether it comes from the definition or is modeled (a Lambda
   * Task waiting for its task token: 1 transition, 5 history events, inserted before Submit)
   * until the workflow has it.
   */
  readonly admit: { readonly index: number; readonly modeled: boolean };
  /** One poll loop (Wait, Poll, Check status). */
  readonly loop: readonly StepCost[];
  /** States after the loop on success (Persist, then whatever follows it, to the end). */
  readonly after: readonly StepCost[];
  /** How Submit, Poll and Persist retry a throttled call (DashScopeThrottledError). */
  readonly retry: { readonly submit: RetryRule; readonly poll: RetryRule; readonly persist: RetryRule };
  /** The Choice's poll cap and the generation deadline of the deployed configuration. */
  readonly maxPolls: number;
  readonly deadlineSeconds: number;
  /** Memory of the Admit, Submit, Poll and dispatcher functions, in MB (for GB-s). */
  readonly memoryMb: {
    readonly admit: number;
    readonly submit: number;
    readonly poll: number;
    readonly dispatch: number;
  };
  /** The rest of the deployment the cost model reads (the API's and the reconciler's memory, the sweep). */
  readonly sizing: DeploymentSizing;
}

export interface StepCost {
  readonly name: string;
  readonly type: string;
  readonly transitions: number;
  readonly events: number;
}

/** One `Retry` rule of a Task. */
export interface RetryRule {
  readonly intervalSeconds: number;
  readonly backoffRate: number;
  readonly maxAttempts: number;
  readonly maxDelaySeconds: number;
  readonly fullJitter: boolean;
}

/** History events per retry of a Lambda Task. */
export const EVENTS_PER_RETRY = 3;
/** `ExecutionStarted` and `ExecutionSucceeded`. */
export const EXECUTION_EVENTS = 2;

/**
 * Admit's state name: `STATE_NAMES.admit` once the workflow has that state, and the name the
 * issue gives it until then.
 */
export const ADMIT_STATE: string = (STATE as Readonly<Record<string, string>>).admit ?? 'Admit';

const EVENTS_BY_TYPE: Readonly<Record<string, number>> = { Pass: 2, Wait: 2, Choice: 2, Succeed: 2, Task: 5 };

interface AslState {
  Type: string;
  Next?: string;
  End?: boolean;
  Default?: string;
  Choices?: Array<{
    Variable?: string;
    StringEquals?: string;
    NumericGreaterThanEquals?: number;
    Next: string;
  }>;
  Retry?: Array<{
    ErrorEquals: string[];
    IntervalSeconds?: number;
    BackoffRate?: number;
    MaxAttempts?: number;
    MaxDelaySeconds?: number;
    JitterStrategy?: string;
  }>;
  Resource?: string;
}

/** A synthesized CloudFormation template, as far as the benchmarks read it. */
export interface SynthesizedTemplate {
  readonly Resources: Record<string, { Type: string; Properties?: Record<string, unknown> }>;
}

/**
 * The stack's template as `cdk synth` makes it with cdk.json's context (bundling skipped: it does
 * not change the template's resources or the definition), with `overrides` laid over the
 * `generation` configuration's top-level fields (e.g. `{ monitoring: 'lean' }`).
 */
export function synthesizeTemplate(overrides: Partial<StackConfig> = {}): SynthesizedTemplate {
  return synthesizeStack(overrides).template;
}

function cdkContext(root: string): Record<string, unknown> {
  const cdkJson = JSON.parse(readFileSync(path.join(root, 'cdk.json'), 'utf8')) as {
    context?: Record<string, unknown>;
  };
  return cdkJson.context ?? {};
}

/** Reads the workflow's shape from the synthesized template (by default, {@link synthesizeTemplate}'s). */
export function synthesizeWorkflowShape(template: SynthesizedTemplate = synthesizeTemplate()): WorkflowShape {
  const root = path.join(import.meta.dirname, '..', '..');
  const definition = stateMachineDefinition(template) as unknown as {
    StartAt: string;
    States: Record<string, AslState>;
  };
  const state = (name: string): AslState => {
    const found = definition.States[name];
    if (!found) throw new Error(`the workflow has no state "${name}"`);
    return found;
  };
  const cost = (name: string): StepCost => {
    const { Type } = state(name);
    const events = EVENTS_BY_TYPE[Type];
    if (events === undefined)
      throw new Error(`state "${name}" is a ${Type}, which the simulation does not count`);
    return { name, type: Type, transitions: 1, events };
  };
  const walk = (from: string, until: string | undefined): StepCost[] => {
    const steps: StepCost[] = [];
    for (let name: string | undefined = from; name !== undefined && name !== until; name = state(name).Next) {
      if (steps.length > 50) throw new Error('the workflow path does not end');
      steps.push(cost(name));
    }
    return steps;
  };

  const check = state(STATE.check);
  if (check.Default !== STATE.wait)
    throw new Error(`"${STATE.check}" no longer loops back to "${STATE.wait}"`);
  const success = check.Choices?.find((rule) => rule.StringEquals === 'succeeded');
  if (!success) throw new Error(`"${STATE.check}" has no branch for a succeeded task`);
  const cap = check.Choices?.find((rule) => rule.Variable === '$.task.pollCount');

  const memory = (taskName: string): number => {
    const logicalId = /function:(.+)$/.exec(definition.States[taskName]?.Resource ?? '')?.[1] ?? '';
    return Number(template.Resources[logicalId]?.Properties?.MemorySize ?? 128);
  };
  const generation = (cdkContext(root).generation ?? {}) as { deadlineSeconds?: number };
  const sizing = deploymentSizing(template);
  const before = walk(definition.StartAt, STATE.wait);
  const modeled = definition.States[ADMIT_STATE] === undefined;
  if (modeled) {
    const submitAt = before.findIndex((step) => step.name === STATE.submit);
    before.splice(submitAt, 0, {
      name: ADMIT_STATE,
      type: 'Task',
      transitions: 1,
      events: EVENTS_BY_TYPE.Task ?? 5,
    });
  }
  const admitAt = before.findIndex((step) => step.name === ADMIT_STATE);
  if (admitAt < 0) throw new Error(`"${ADMIT_STATE}" is not on the path from the start to "${STATE.wait}"`);
  return {
    before,
    admit: { index: admitAt, modeled },
    loop: [cost(STATE.wait), cost(STATE.poll), cost(STATE.check)],
    after: walk(success.Next, undefined),
    retry: {
      submit: throttleRetry(state(STATE.submit)),
      poll: throttleRetry(state(STATE.poll)),
      persist: throttleRetry(state(STATE.persist)),
    },
    maxPolls: cap?.NumericGreaterThanEquals ?? Number.POSITIVE_INFINITY,
    deadlineSeconds: generation.deadlineSeconds ?? 3600,
    memoryMb: {
      admit: memory(ADMIT_STATE),
      submit: memory(STATE.submit),
      poll: memory(STATE.poll),
      dispatch: sizing.dispatchMemoryMb,
    },
    sizing,
  };
}

/** The Retry rule a Task applies to `DashScopeThrottledError` (Step Functions' defaults filled in). */
function throttleRetry(task: AslState): RetryRule {
  const rule = task.Retry?.find((retry) => retry.ErrorEquals.includes('DashScopeThrottledError'));
  if (!rule)
    return { intervalSeconds: 0, backoffRate: 1, maxAttempts: 0, maxDelaySeconds: 0, fullJitter: false };
  return {
    intervalSeconds: rule.IntervalSeconds ?? 1,
    backoffRate: rule.BackoffRate ?? 2,
    maxAttempts: rule.MaxAttempts ?? 3,
    maxDelaySeconds: rule.MaxDelaySeconds ?? Number.POSITIVE_INFINITY,
    fullJitter: rule.JitterStrategy === 'FULL',
  };
}
