import { ExecutionAbortedError, ExecutionError, type StateMachineDefinition } from 'aws-local-stepfunctions';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { AdjustableClock } from '../../functions/shared/clock.js';
import { type Logger, silentLogger } from '../../functions/shared/logger.js';
import { STATE_NAMES as STATE } from '../../functions/shared/state-names.js';
import { checkpointsOf, outcomeOf, RunningExecutions } from '../../local/execution-run.js';
import type { Checkpoint } from '../../local/execution-store.js';
import { LocalTaskTokens } from '../../local/local-admission.js';
import type { RunningExecution } from '../../local/runner.js';
import { functionEnvironment, LOCAL_TABLE } from '../../local/runner-stack.js';
import { runnerTime } from '../../local/runner-time.js';
import { workflowMachines } from '../../local/state-machines.js';
import { endChange, statusChanges } from '../../local/status-changes.js';
import type { CloudFormationTemplate } from '../../local/synth-cache.js';
import { type Retrier, retryInterval, taskStateHandlers } from '../../local/task-states.js';
import type { VirtualTimeParticipant } from '../../local/virtual-time.js';
import { ManualClock } from '../support/manual-clock.js';

/**
 * The local runner's parts, each on what it alone decides; together they run the synthesized
 * workflow in test/e2e/workflow.test.ts and the contract of test/contract/execution-service.test.ts.
 */

const fn = (logicalId: string) => `arn:aws:lambda:local:000000000000:function:${logicalId}`;

/** A participant in virtual time that notes its sleeps and takes no time. */
function notingParticipant() {
  const slept: number[] = [];
  const participant: VirtualTimeParticipant = {
    sleep: async (ms) => void slept.push(ms),
    idle: (promise) => promise,
    leave: () => {},
  };
  return { participant, slept };
}

function named(name: string, message = 'failed'): Error {
  const error = new Error(message);
  error.name = name;
  return error;
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('the retry interval of a Task state', () => {
  const retriers: Retrier[] = [
    {
      ErrorEquals: ['DashScopeThrottledError'],
      IntervalSeconds: 2,
      BackoffRate: 3,
      MaxAttempts: 3,
      MaxDelaySeconds: 10,
    },
    { ErrorEquals: ['States.ALL'] },
  ];

  it('follows the first retrier naming the error: interval × backoff^retries, capped, until its attempts are spent', () => {
    const used: number[] = [];
    const throttled = named('DashScopeThrottledError');

    const waits = [1, 2, 3, 4].map(() => retryInterval(retriers, used, throttled));

    expect(waits).toEqual([2000, 6000, 10_000, undefined]);
    expect(used).toEqual([3]);
  });

  it('counts each retrier apart, with the States Language defaults (1 s, ×2, 3 attempts), and lets a wildcard take anything', () => {
    const used: number[] = [];

    const waits = [1, 2, 3, 4].map(() => retryInterval(retriers, used, 'not even an Error'));

    expect(waits).toEqual([1000, 2000, 4000, undefined]);
    expect(used).toEqual([undefined, 3]);
    expect(retryInterval([{ ErrorEquals: ['Other'] }], [], named('Lambda.Unknown'))).toBeUndefined();
  });

  it('draws a full jitter between 0 and the interval', () => {
    vi.spyOn(Math, 'random').mockReturnValue(0.25);

    expect(
      retryInterval(
        [{ ErrorEquals: ['States.ALL'], IntervalSeconds: 8, JitterStrategy: 'FULL' }],
        [],
        named('X'),
      ),
    ).toBe(2000);
  });
});

describe('the Task states of one execution', () => {
  const definition = {
    StartAt: STATE.submit,
    States: {
      Admit: {
        Type: 'Task',
        Resource: 'arn:aws:states:::lambda:invoke.waitForTaskToken',
        Parameters: { FunctionName: fn('AdmitFn'), 'Payload.$': '$' },
        Next: STATE.submit,
      },
      [STATE.submit]: {
        Type: 'Task',
        Resource: fn('SubmitFn'),
        Retry: [{ ErrorEquals: ['States.ALL'], IntervalSeconds: 5, MaxAttempts: 1 }],
        Next: STATE.poll,
      },
      [STATE.poll]: { Type: 'Task', Resource: fn('PollFn'), End: true },
    },
  } as unknown as StateMachineDefinition;

  function setup(
    handlers: Record<string, (event: unknown) => Promise<unknown>>,
    overrides: { virtualRetries?: boolean } = {},
  ) {
    const tokens = new LocalTaskTokens();
    const noted = notingParticipant();
    const observed: unknown[] = [];
    const queued: string[] = [];
    const states = taskStateHandlers(
      definition,
      { AdmitFn: async () => ({}), SubmitFn: async () => ({}), PollFn: async () => ({}), ...handlers },
      {
        tokens,
        participant: noted.participant,
        virtualRetries: overrides.virtualRetries ?? true,
        invocationTime: runnerTime({}).invocationTime,
        intercept: undefined,
        observer: { onTaskState: (state) => observed.push(state) },
        queued: () => queued.push('queued'),
      },
    );
    return { states, tokens, slept: noted.slept, observed, queued };
  }

  it('refuses a definition whose Task calls a function the runner does not have', () => {
    expect(() =>
      taskStateHandlers(definition, { SubmitFn: async () => ({}), PollFn: async () => ({}) }, {} as never),
    ).toThrow(
      'Task state "Admit" calls arn:aws:states:::lambda:invoke.waitForTaskToken, which has no local handler',
    );
  });

  it('ends a callback state with its token’s answer, after its function queued it with the payload', async () => {
    const payloads: unknown[] = [];
    const { states, tokens, queued } = setup({ AdmitFn: async (payload) => void payloads.push(payload) });

    const admitted = states.Admit!({ Payload: { taskToken: 'tok-1', id: 'g' } });
    await vi.waitFor(() => expect(queued).toEqual(['queued']));
    expect(await tokens.resume('tok-1', { account: 'main', grantedAt: 'now' })).toBe('resumed');

    expect(await admitted).toEqual({ account: 'main', grantedAt: 'now' });
    expect(payloads).toEqual([{ taskToken: 'tok-1', id: 'g' }]);
  });

  it('forgets the token of a callback whose function failed: nobody waits on it', async () => {
    const { states, tokens, queued } = setup({
      AdmitFn: async () => Promise.reject(named('Lambda.Unknown')),
    });

    await expect(states.Admit!({ Payload: { taskToken: 'tok-2' } })).rejects.toThrow('failed');

    expect(queued).toEqual([]);
    expect(await tokens.resume('tok-2', { account: 'main', grantedAt: 'now' })).toBe('gone');
  });

  it('sleeps a failed state’s retry interval in virtual time before its next call, and the Wait before a Poll', async () => {
    let calls = 0;
    const { states, slept, observed } = setup({
      SubmitFn: async () => {
        if (++calls === 1) throw named('Boom');
        return { status: 'queued' };
      },
    });

    await expect(states[STATE.submit]!({})).rejects.toThrow('failed');
    await states[STATE.submit]!({});
    await states[STATE.poll]!({ task: { nextPollSeconds: 7 } });

    expect(slept).toEqual([5000, 7000]);
    expect(observed).toEqual([{ status: 'queued' }, {}]);
  });

  it('leaves the retry interval to the engine when retries are real: the next call sleeps nothing more', async () => {
    const { states, slept } = setup(
      { SubmitFn: async () => Promise.reject(named('Boom')) },
      { virtualRetries: false },
    );

    await expect(states[STATE.submit]!({})).rejects.toThrow();
    await expect(states[STATE.submit]!({})).rejects.toThrow();

    expect(slept).toEqual([0]);
  });
});

describe('a function’s environment', () => {
  const template = {
    Resources: {
      Fn: {
        Type: 'AWS::Lambda::Function',
        Properties: {
          Environment: {
            Variables: {
              TABLE_NAME: { Ref: 'Table' },
              BUCKET_NAME: { Ref: 'Bucket' },
              DASHSCOPE_BASE_URL: 'https://dashscope.aliyuncs.com',
              DASHSCOPE_ACCOUNTS: '[{"name":"deployed"}]',
              WEBHOOK_SECRET_ID: 'arn:secret',
              DEAD_LETTER_QUEUE_URL: 'https://sqs/queue',
              LOG_LEVEL: 'INFO',
            },
          },
        },
      },
      Table: { Type: 'AWS::DynamoDB::Table' },
      Bucket: { Type: 'AWS::S3::Bucket' },
    },
  } as unknown as CloudFormationTemplate;
  const local = {
    dashscope: { baseUrl: 'http://127.0.0.1:9', apiKey: 'sk-local' },
    s3: { client: {} as never, bucket: 'local-bucket' },
  };

  it('is the template’s, pointed at the local endpoints, without the deployment’s accounts, secret and queue', () => {
    expect(
      functionEnvironment(template, 'Fn', {
        ...local,
        environment: { LOG_LEVEL: 'DEBUG', DASHSCOPE_BASE_URL: 'https://nope' },
      }),
    ).toEqual({
      TABLE_NAME: LOCAL_TABLE,
      BUCKET_NAME: 'local-bucket',
      DASHSCOPE_BASE_URL: 'http://127.0.0.1:9',
      DASHSCOPE_API_KEY: 'sk-local',
      DASHSCOPE_API_KEY_SECRET_ID: undefined,
      WEBHOOK_SECRET_ID: undefined,
      DEAD_LETTER_QUEUE_URL: undefined,
      LOG_LEVEL: 'DEBUG',
    });
  });

  it('takes the accounts, result hosts, run times and table given', () => {
    const env = functionEnvironment(template, 'Fn', {
      ...local,
      dashscope: {
        ...local.dashscope,
        accounts: [{ name: 'a', baseUrl: 'http://127.0.0.1:1', apiKey: 'k' }],
        resultHosts: ['127.0.0.1', 'localhost'],
        runTimeModel: { 'stable-diffusion-3.5-large': { baseSeconds: 3 } } as never,
        apiKeySecret: { id: 'secret-id', read: async () => 'x' },
      },
      index: { client: {} as never, table: 'other-table' },
    });

    expect(env).toMatchObject({
      TABLE_NAME: 'other-table',
      DASHSCOPE_ACCOUNTS: '[{"name":"a","baseUrl":"http://127.0.0.1:1","apiKey":"k"}]',
      RESULT_HOSTS: '127.0.0.1,localhost',
      RUN_TIME_MODEL: '{"stable-diffusion-3.5-large":{"baseSeconds":3}}',
      DASHSCOPE_API_KEY_SECRET_ID: 'secret-id',
    });
  });
});

describe('the runner’s time', () => {
  it('in virtual time alone: the engine waits for nothing, the executions sleep in virtual time', () => {
    const clock = new ManualClock() as unknown as AdjustableClock;
    const time = runnerTime({ virtualWaits: clock });

    expect(time.clock).toBe(clock);
    expect(time.virtualRetries).toBe(true);
    expect(time.engineWaits(['Submit', 'Poll'])).toEqual({
      waitTimeOverrides: { [STATE.wait]: 0 },
      retryIntervalOverrides: { Submit: 0, Poll: 0 },
    });
  });

  it('with a fixed retry interval: each sleep moves the clock at once, retries take that interval of real time', async () => {
    const manual = new ManualClock();
    const time = runnerTime({ virtualWaits: manual as unknown as AdjustableClock, retryIntervalMs: 3 });
    const before = manual.now();

    await time.join()?.sleep(60_000);

    expect(manual.now() - before).toBe(60_000);
    expect(time.virtualRetries).toBe(false);
    expect(time.engineWaits(['Submit']).retryIntervalOverrides).toEqual({ Submit: 3 });
  });

  it('in real time: no part to join, the engine’s own waits, and a clock given wins', () => {
    const clock = { now: () => 42 };
    const real = runnerTime({ clock });

    expect(real.join()).toBeUndefined();
    expect(real.clock).toBe(clock);
    expect(real.engineWaits(['Submit'])).toEqual({
      waitTimeOverrides: undefined,
      retryIntervalOverrides: undefined,
    });
    expect(runnerTime({ retryIntervalMs: 1 }).engineWaits(['Submit']).retryIntervalOverrides).toEqual({
      Submit: 1,
    });
  });

  it('lets a function sleep on the part of the execution that invoked it', async () => {
    const time = runnerTime({});
    const { participant, slept } = notingParticipant();

    await time.invocationTime.run(participant, () => time.sleep(90_000));

    expect(slept).toEqual([90_000]);
  });
});

describe('the status changes played to the reconciler', () => {
  it('records an end with its output, its error, or the stop’s reason (null without one)', () => {
    const output = { id: 'g' } as never;

    expect(endChange({ status: 'SUCCEEDED', output }, '{}', undefined)).toEqual({
      status: 'SUCCEEDED',
      input: '{}',
      output: '{"id":"g"}',
    });
    expect(endChange({ status: 'FAILED', error: 'E', cause: 'C' }, '{}', { error: 'x', cause: 'y' })).toEqual(
      { status: 'FAILED', input: '{}', error: 'E', cause: 'C' },
    );
    expect(endChange({ status: 'ABORTED' }, '{}', { error: 'Cancelled', cause: 'by user' })).toMatchObject({
      error: 'Cancelled',
      cause: 'by user',
    });
    expect(endChange({ status: 'ABORTED' }, '{}', undefined)).toEqual({
      status: 'ABORTED',
      input: '{}',
      error: null,
      cause: null,
    });
  });

  it('stamps the stop date on an end only, and never throws for the reconciler', async () => {
    const events: unknown[] = [];
    const warnings: string[] = [];
    const logger: Logger = { ...silentLogger, warn: (message) => void warnings.push(message) };
    let fail = false;
    const changed = statusChanges(
      async (event) => {
        events.push(event);
        if (fail) throw new Error('index down');
      },
      { now: () => 99 },
      logger,
    );

    await changed('g', 1, { status: 'RUNNING', input: '{}' });
    fail = true;
    await changed('g', 1, { status: 'FAILED', input: '{}', error: 'E', cause: 'C' });

    expect(events).toEqual([
      expect.objectContaining({
        detail: { name: 'g', startDate: 1, stopDate: null, status: 'RUNNING', input: '{}' },
      }),
      expect.objectContaining({ detail: expect.objectContaining({ status: 'FAILED', stopDate: 99 }) }),
    ]);
    expect(warnings).toEqual(['Status change not reconciled']);
    await expect(
      statusChanges(undefined, { now: () => 0 }, logger)('g', 1, { status: 'RUNNING', input: '{}' }),
    ).resolves.toBeUndefined();
  });
});

describe('the workflow’s state machines', () => {
  const definition = {
    StartAt: 'A',
    States: {
      A: { Type: 'Pass', Result: ['a'], ResultPath: '$.path', Next: 'B' },
      B: { Type: 'Pass', InputPath: '$', Parameters: { 'seen.$': '$' }, End: true },
    },
  } as unknown as StateMachineDefinition;

  it('redrive from a state with its input, one machine per state, the definition untouched', async () => {
    const machines = workflowMachines(definition);

    const redriven = await machines.from('B').run({ from: 'checkpoint' }).result;
    const whole = await machines.main.run({}).result;

    expect(redriven).toEqual({ seen: { from: 'checkpoint' } });
    expect(whole).toEqual({ seen: { path: ['a'] } });
    expect(machines.from('B')).toBe(machines.from('B'));
    expect(definition.StartAt).toBe('A');
    expect(() => machines.from('Nowhere')).toThrow('The workflow has no state "Nowhere" to redrive from');
  });
});

describe('an execution’s run', () => {
  it('maps the engine’s end to an outcome: the output, the failed state’s error, or a stop', async () => {
    expect(await outcomeOf(Promise.resolve({ id: 'g' }))).toEqual({
      status: 'SUCCEEDED',
      output: { id: 'g' },
    });
    expect(await outcomeOf(Promise.reject(new ExecutionAbortedError()))).toEqual({ status: 'ABORTED' });
    expect(
      await outcomeOf(Promise.reject(new ExecutionError(named('Lambda.Unknown', 'crashed') as never))),
    ).toEqual({
      status: 'FAILED',
      error: 'Lambda.Unknown',
      cause: 'crashed',
    });
    await expect(outcomeOf(Promise.reject(new Error('engine bug')))).rejects.toThrow('engine bug');
  });

  it('checkpoints each Task and Wait state entered, in order, before the Task’s function runs', async () => {
    const log: string[] = [];
    const checkpoints = checkpointsOf(async (checkpoint: Checkpoint) => {
      await new Promise((resolve) => setTimeout(resolve, 5));
      log.push(`checkpoint ${checkpoint.state} ${JSON.stringify(checkpoint.input)}`);
    });
    const definition = {
      StartAt: 'Work',
      States: {
        Work: { Type: 'Task', Resource: fn('WorkFn'), Next: 'Pause' },
        Pause: { Type: 'Wait', Seconds: 0, Next: 'Fan' },
        // A Wait inside a Map is no checkpoint: a redrive starts from a top-level state.
        Fan: {
          Type: 'Map',
          ItemsPath: '$.items',
          ItemProcessor: {
            StartAt: 'Inner',
            States: { Inner: { Type: 'Wait', Seconds: 0, End: true } },
          },
          ResultPath: null,
          Next: 'Done',
        },
        Done: { Type: 'Pass', End: true },
      },
    } as unknown as StateMachineDefinition;
    const execution = workflowMachines(definition).main.run(
      { n: 1, items: [1] },
      {
        overrides: {
          taskResourceLocalHandlers: {
            Work: async (input) => {
              await checkpoints.checkpointed?.();
              log.push('Work ran');
              return input;
            },
          },
        },
      },
    );
    const followed = checkpoints.follow(execution.eventLogs);

    await execution.result;
    await followed;
    await checkpoints.written();

    expect(log).toEqual([
      'checkpoint Work {"n":1,"items":[1]}',
      'Work ran',
      'checkpoint Pause {"n":1,"items":[1]}',
    ]);
    expect(checkpointsOf(undefined).checkpointed).toBeUndefined();
  });

  it('aborts or suspends only the executions not yet settled, and settles whatever their outcome', async () => {
    const running = new RunningExecutions();
    const calls: string[] = [];
    /** An execution whose outcome fails once it is stopped. */
    const pending = (name: string): RunningExecution => {
      let stop: (error: Error) => void = () => {};
      const outcome = new Promise<never>((_, reject) => {
        stop = reject;
      });
      return {
        outcome,
        abort: () => {
          calls.push(`abort ${name}`);
          stop(new Error('stopped badly'));
        },
        suspend: () => calls.push(`suspend ${name}`),
      };
    };
    running.track({ ...pending('ended'), outcome: Promise.resolve({ status: 'ABORTED' }) });
    await new Promise((resolve) => setImmediate(resolve));
    running.track(pending('a'));
    running.track(pending('b'));

    await expect(running.abortAll()).resolves.toBeUndefined();
    await running.suspendAll();

    expect(calls).toEqual(['abort a', 'abort b']);
  });
});
