import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createSfnExecutionService } from '../../functions/shared/aws/sfn-execution-service.js';
import {
  ExecutionAlreadyExistsError,
  type ExecutionService,
} from '../../functions/shared/execution-service.js';
import { createLocalExecutionService } from '../../local/execution-service.js';
import { ExecutionStore } from '../../local/execution-store.js';
import type {
  AbortedOutcome,
  ExecutionOutcome,
  LocalRunner,
  RunningExecution,
  StartOptions,
} from '../../local/runner.js';
import { FakeExecutionService } from '../api/fake-executions.js';
import { ManualClock } from '../support/manual-clock.js';
import { clientOf, StepFunctionsModel } from '../support/step-functions.js';
import { waitFor } from '../support/wait-for.js';

/**
 * One contract for every implementation of the execution port: the Step Functions adapter
 * (against Step Functions' documented answers, test/support/step-functions.ts), the local
 * engine's service (on a store in a temporary folder, as `npm start` keeps it) and the API tests'
 * fake. Each runs on a clock the test moves, so dates are exact. An implementation that drifts
 * from Step Functions fails here.
 */

/** How an execution ends on its own, as the workflow ends it. */
type End =
  | { readonly status: 'SUCCEEDED'; readonly output: Record<string, unknown> }
  | { readonly status: 'FAILED'; readonly error: string; readonly cause: string };

interface Subject {
  readonly service: ExecutionService;
  /** Ends a running execution as its workflow would. */
  end(name: string, end: End): Promise<void>;
  close(): Promise<void>;
}

const STATE_MACHINE_ARN = 'arn:aws:states:eu-west-1:123456789012:stateMachine:Sd35Generations';

/**
 * A local runner whose executions do nothing until the test ends them: what the local service
 * adds to the engine (names, statuses, stops, the store) is tested, not the workflow. An abort
 * ends the execution a moment later, as the engine's does (it unwinds the state it was in).
 */
function scriptedRunner(): {
  runner: LocalRunner;
  end(name: string, outcome: ExecutionOutcome): Promise<void>;
} {
  const running = new Map<string, (outcome: ExecutionOutcome | AbortedOutcome) => Promise<void>>();
  const start = (name: string, _request: unknown, _observer: unknown, options: StartOptions = {}) => {
    let settle: (outcome: ExecutionOutcome | AbortedOutcome) => void = () => {};
    const outcome = new Promise<ExecutionOutcome | AbortedOutcome>((resolve) => {
      settle = resolve;
    });
    const finish = async (ended: ExecutionOutcome | AbortedOutcome) => {
      if (!running.delete(name)) return;
      await options.onEnded?.(ended);
      settle(ended);
    };
    running.set(name, finish);
    const handle: RunningExecution = {
      outcome,
      abort: () => void setImmediate(() => void finish({ status: 'ABORTED' })),
      suspend: () => settle({ status: 'ABORTED' }),
    };
    return handle;
  };
  const runner = { definition: { StartAt: 'Admit' }, start, suspendAll: async () => {} };
  return {
    runner: runner as unknown as LocalRunner,
    end: async (name, outcome) => {
      await running.get(name)?.(outcome);
    },
  };
}

const implementations: [string, (clock: ManualClock) => Promise<Subject>][] = [
  [
    'the Step Functions adapter',
    async (clock) => {
      const model = new StepFunctionsModel(STATE_MACHINE_ARN, clock);
      return {
        service: createSfnExecutionService(clientOf(model), STATE_MACHINE_ARN),
        end: async (name, end) =>
          model.end(
            name,
            end.status === 'SUCCEEDED' ? { status: end.status, output: JSON.stringify(end.output) } : end,
          ),
        close: async () => {},
      };
    },
  ],
  [
    'the local service',
    async (clock) => {
      const dir = await mkdtemp(path.join(tmpdir(), 'execution-service-contract-'));
      const { runner, end } = scriptedRunner();
      const service = createLocalExecutionService(runner, clock, { store: new ExecutionStore(dir) });
      return {
        service,
        end: async (name, ended) => {
          await end(name, ended as ExecutionOutcome);
          await service.settled(name);
        },
        close: () => rm(dir, { recursive: true, force: true }),
      };
    },
  ],
  [
    'the API tests’ fake',
    async (clock) => {
      const fake = new FakeExecutionService(clock);
      return {
        service: fake,
        end: async (name, end) => {
          const execution = fake.executions.get(name);
          if (execution?.status !== 'RUNNING') throw new Error(`${name} is not running`);
          Object.assign(execution, end, { stopDate: new Date(clock.now()) });
        },
        close: async () => {},
      };
    },
  ],
];

const request = (prompt = 'a lighthouse at dusk') => ({ prompt, n: 2, size: '1024*1024', seed: 7 });
const canceled = { error: 'DashScopeTaskCanceled', cause: 'Canceled through the API' };

describe.each(implementations)('%s', (_name, create) => {
  let clock: ManualClock;
  let subject: Subject;
  let service: ExecutionService;

  beforeEach(async () => {
    clock = new ManualClock(Date.UTC(2026, 2, 1, 12, 0, 0));
    subject = await create(clock);
    service = subject.service;
  });

  afterEach(async () => {
    await subject.close();
  });

  describe('start', () => {
    it('starts a running execution, its input as given, at the present time', async () => {
      const started = await service.start('gen-1', request());

      expect(started).toEqual({ startDate: new Date(clock.now()) });
      expect(await service.describe('gen-1')).toEqual({
        name: 'gen-1',
        status: 'RUNNING',
        startDate: new Date(clock.now()),
        input: request(),
      });
    });

    it('keeps the input it was given, whatever the caller does with its object afterwards', async () => {
      const input: Record<string, unknown> = request();

      await service.start('gen-1', input);
      input.prompt = 'changed after the start';

      expect((await service.describe('gen-1'))?.input).toEqual(request());
    });

    it('answers the same name and input while it runs with the first start, starting nothing', async () => {
      const first = await service.start('gen-1', request());
      clock.advance(5000);

      const again = await service.start('gen-1', request());

      expect(again).toEqual(first);
      expect(await service.describe('gen-1')).toMatchObject({
        status: 'RUNNING',
        startDate: first.startDate,
      });
    });

    it('refuses the same name with another input while it runs', async () => {
      await service.start('gen-1', request('a lighthouse'));

      await expect(service.start('gen-1', request('a windmill'))).rejects.toBeInstanceOf(
        ExecutionAlreadyExistsError,
      );
      expect((await service.describe('gen-1'))?.input).toEqual(request('a lighthouse'));
    });

    it.each([
      ['succeeded', { status: 'SUCCEEDED', output: { id: 'gen-1' } }],
      ['failed', { status: 'FAILED', error: 'ContentPolicyError', cause: 'DataInspectionFailed' }],
    ] as const)('refuses the same name and input once the execution %s', async (_, end) => {
      await service.start('gen-1', request());
      await subject.end('gen-1', end);

      await expect(service.start('gen-1', request())).rejects.toBeInstanceOf(ExecutionAlreadyExistsError);
      expect((await service.describe('gen-1'))?.status).toBe(end.status);
    });

    it('refuses the same name and input once the execution was stopped', async () => {
      await service.start('gen-1', request());
      await service.stop('gen-1', canceled);

      await expect(service.start('gen-1', request())).rejects.toBeInstanceOf(ExecutionAlreadyExistsError);
    });

    it('starts one execution for two starts of one name and input at once, answering both alike', async () => {
      const [one, two] = await Promise.all([
        service.start('gen-1', request()),
        service.start('gen-1', request()),
      ]);

      expect(two).toEqual(one);
      expect(await service.describe('gen-1')).toMatchObject({ status: 'RUNNING', startDate: one.startDate });
    });

    it('starts one of two starts of one name with different inputs at once, and refuses the other', async () => {
      const settled = await Promise.allSettled([
        service.start('gen-1', request('a lighthouse')),
        service.start('gen-1', request('a windmill')),
      ]);

      expect(settled.map((result) => result.status).sort()).toEqual(['fulfilled', 'rejected']);
      const refused = settled.find((result) => result.status === 'rejected');
      expect(refused?.reason).toBeInstanceOf(ExecutionAlreadyExistsError);
      const won = settled[0]?.status === 'fulfilled' ? 'a lighthouse' : 'a windmill';
      expect((await service.describe('gen-1'))?.input).toEqual(request(won));
    });

    it('refuses the same name and input once a stop shows, even before the stop has answered', async () => {
      await service.start('gen-1', request());

      const stopping = service.stop('gen-1', canceled);
      await waitFor(async () => (await service.describe('gen-1'))?.status === 'ABORTED', {
        what: 'the stop to show',
        timeoutMs: 60_000,
        intervalMs: 1,
      });
      const restarted = service.start('gen-1', request()).catch((caught: unknown) => caught);
      await stopping;

      expect(await restarted).toBeInstanceOf(ExecutionAlreadyExistsError);
    });

    it('refuses with an error named ExecutionAlreadyExistsError', async () => {
      await service.start('gen-1', request('a'));

      const error = await service.start('gen-1', request('b')).catch((caught: unknown) => caught);

      expect(error).toMatchObject({ name: 'ExecutionAlreadyExistsError' });
    });
  });

  describe('describe', () => {
    it('answers undefined for a name no execution has', async () => {
      expect(await service.describe('gen-unknown')).toBeUndefined();
    });

    it('shows a succeeded execution with its output and the time it ended', async () => {
      const { startDate } = await service.start('gen-1', request());
      clock.advance(42_000);
      const output = { id: 'gen-1', result: { manifestKey: 'generations/gen-1/manifest.json' } };

      await subject.end('gen-1', { status: 'SUCCEEDED', output });

      expect(await service.describe('gen-1')).toEqual({
        name: 'gen-1',
        status: 'SUCCEEDED',
        startDate,
        stopDate: new Date(clock.now()),
        input: request(),
        output,
      });
    });

    it('shows a failed execution with its error and cause', async () => {
      const { startDate } = await service.start('gen-1', request());
      clock.advance(3000);

      await subject.end('gen-1', {
        status: 'FAILED',
        error: 'ContentPolicyError',
        cause: 'DataInspectionFailed',
      });

      expect(await service.describe('gen-1')).toEqual({
        name: 'gen-1',
        status: 'FAILED',
        startDate,
        stopDate: new Date(clock.now()),
        input: request(),
        error: 'ContentPolicyError',
        cause: 'DataInspectionFailed',
      });
    });

    it('keeps every execution apart', async () => {
      await service.start('gen-1', request('one'));
      await service.start('gen-2', request('two'));
      await subject.end('gen-1', { status: 'SUCCEEDED', output: {} });

      expect(await service.describe('gen-2')).toMatchObject({ status: 'RUNNING', input: request('two') });
    });
  });

  describe('stop', () => {
    it('aborts a running execution at once, with the error and cause it was given', async () => {
      const { startDate } = await service.start('gen-1', request());
      clock.advance(7000);

      await service.stop('gen-1', canceled);

      expect(await service.describe('gen-1')).toEqual({
        name: 'gen-1',
        status: 'ABORTED',
        startDate,
        stopDate: new Date(clock.now()),
        input: request(),
        ...canceled,
      });
    });

    it('does nothing to an execution that already ended', async () => {
      await service.start('gen-1', request());
      await subject.end('gen-1', { status: 'SUCCEEDED', output: { id: 'gen-1' } });
      const before = await service.describe('gen-1');
      clock.advance(1000);

      await service.stop('gen-1', canceled);

      expect(await service.describe('gen-1')).toEqual(before);
    });

    it('keeps the first stop’s reason and time when stopped twice', async () => {
      await service.start('gen-1', request());
      await service.stop('gen-1', canceled);
      const first = await service.describe('gen-1');
      clock.advance(1000);

      await service.stop('gen-1', { error: 'Other', cause: 'a second stop' });

      expect(await service.describe('gen-1')).toEqual(first);
    });

    it('does nothing, and throws nothing, for a name no execution has', async () => {
      await expect(service.stop('gen-unknown', canceled)).resolves.toBeUndefined();
      expect(await service.describe('gen-unknown')).toBeUndefined();
    });
  });
});
