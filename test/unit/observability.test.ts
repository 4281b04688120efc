import { afterEach, describe, expect, it, vi } from 'vitest';
import { createNotifyHandler, outcomeOf } from '../../functions/notify/handler.js';
import type { NotifyInput } from '../../functions/notify/notify.js';
import { lambdaEntry } from '../../functions/shared/lambda-entry.js';
import { correlationOf, createLambdaLogger, type Logger, withKeys } from '../../functions/shared/logger.js';
import {
  countThrottles,
  createLambdaMetrics,
  METRIC,
  type MetricName,
  type Metrics,
  type MetricUnit,
} from '../../functions/shared/metrics.js';
import { createSubmitHandler, submitDeps } from '../../functions/submit/handler.js';
import { submitSpec } from '../../functions/submit/spec.js';

type Json = Record<string, any>;

/** Metrics kept in memory. */
function recordingMetrics(): Metrics & {
  added: Array<{
    name: MetricName;
    unit: MetricUnit;
    value: number;
    dimensions?: Readonly<Record<string, string>>;
  }>;
} {
  const added: Array<{
    name: MetricName;
    unit: MetricUnit;
    value: number;
    dimensions?: Readonly<Record<string, string>>;
  }> = [];
  return {
    added,
    add: (name, unit, value, dimensions) =>
      added.push({ name, unit, value, ...(dimensions ? { dimensions } : {}) }),
  };
}

/** A logger that keeps each entry's message and fields. */
function recordingLogger(): Logger & { entries: Json[] } {
  const entries: Json[] = [];
  const log = (level: string) => (message: string, extra?: Record<string, unknown>) =>
    entries.push({ level, message, ...extra });
  return { entries, debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') };
}

/** Everything written to stdout while `act` runs, one JSON document per line. */
async function stdoutOf(act: () => unknown): Promise<Json[]> {
  const lines: string[] = [];
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    lines.push(String(chunk));
    return true;
  });
  try {
    await act();
  } finally {
    spy.mockRestore();
  }
  return lines
    .join('')
    .split('\n')
    .filter((line) => line.trim().startsWith('{'))
    .map((line) => JSON.parse(line) as Json);
}

const LAMBDA_CONTEXT = {
  functionName: 'Sd35Generation-FunctionsPoll',
  functionVersion: '$LATEST',
  invokedFunctionArn: 'arn:aws:lambda:eu-central-1:123456789012:function:Sd35Generation-FunctionsPoll',
  memoryLimitInMB: '256',
  awsRequestId: 'c6af9ac6-7b61-11e6-9a41-93e812345678',
  logGroupName: '/aws/lambda/poll',
  logStreamName: 'stream',
  callbackWaitsForEmptyEventLoop: true,
  getRemainingTimeInMillis: () => 1000,
  done: () => {},
  fail: () => {},
  succeed: () => {},
};

afterEach(() => {
  vi.unstubAllEnvs();
});

describe('correlation fields', () => {
  it('come from a Poll or Persist event: generation, execution, DashScope task and latest request', () => {
    const event = {
      id: 'gen-1',
      executionId: 'arn:aws:states:eu-central-1:123456789012:execution:sm:gen-1',
      request: { prompt: 'never logged' },
      task: { taskId: 'task-1', submitRequestId: 'req-submit', lastRequestId: 'req-poll-3' },
    };
    expect(correlationOf(event)).toEqual({
      generationId: 'gen-1',
      executionId: event.executionId,
      taskId: 'task-1',
      dashscopeRequestId: 'req-poll-3',
    });
  });

  it('come from the notifier’s state, and are simply absent from a malformed event', () => {
    expect(
      correlationOf({
        outcome: 'failed',
        state: { id: 'gen-2', task: { taskId: 't', submitRequestId: 'r' } },
      }),
    ).toMatchObject({ generationId: 'gen-2', taskId: 't', dashscopeRequestId: 'r' });
    expect(correlationOf('garbage')).toEqual({});
    expect(correlationOf({ id: 5, task: 'x' })).toEqual({
      generationId: undefined,
      executionId: undefined,
      taskId: undefined,
      dashscopeRequestId: undefined,
    });
  });

  it('go on every entry of a keyed logger; an entry’s own fields win and undefined keys are left out', () => {
    const logger = recordingLogger();
    const keyed = withKeys(logger, { generationId: 'gen-1', taskId: undefined });
    keyed.info('one');
    keyed.warn('two', { generationId: 'other', n: 2 });
    expect(logger.entries).toEqual([
      { level: 'info', message: 'one', generationId: 'gen-1' },
      { level: 'warn', message: 'two', generationId: 'other', n: 2 },
    ]);
  });
});

describe('the Lambda logger', () => {
  it('writes structured JSON with the service, the Lambda context and the entry’s fields', async () => {
    const logger = createLambdaLogger('poll');
    const lines = await stdoutOf(() => {
      logger.addContext(LAMBDA_CONTEXT);
      withKeys(logger, { generationId: 'gen-1' }).info('DashScope task polled', { status: 'running' });
    });
    expect(lines).toEqual([
      expect.objectContaining({
        level: 'INFO',
        message: 'DashScope task polled',
        service: 'poll',
        function_request_id: LAMBDA_CONTEXT.awsRequestId,
        generationId: 'gen-1',
        status: 'running',
      }),
    ]);
  });
});

describe('EMF metrics', () => {
  it('are written on flush in the configured namespace, with the service dimension', async () => {
    vi.stubEnv('POWERTOOLS_METRICS_NAMESPACE', 'Sd35Test');
    const metrics = createLambdaMetrics('persist');
    metrics.add(METRIC.bytesPersisted, 'Bytes', 2048);
    metrics.add(METRIC.imagesPersisted, 'Count', 2);

    const lines = await stdoutOf(() => metrics.flush());

    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      service: 'persist',
      BytesPersisted: 2048,
      ImagesPersisted: 2,
      _aws: {
        CloudWatchMetrics: [
          {
            Namespace: 'Sd35Test',
            Dimensions: [['service']],
            Metrics: expect.arrayContaining([
              { Name: 'BytesPersisted', Unit: 'Bytes' },
              { Name: 'ImagesPersisted', Unit: 'Count' },
            ]),
          },
        ],
      },
    });
  });

  it('write a metric with extra dimensions on a line of its own, and nothing when nothing was added', async () => {
    vi.stubEnv('POWERTOOLS_METRICS_NAMESPACE', 'Sd35Test');
    const metrics = createLambdaMetrics('notify');

    const lines = await stdoutOf(() => {
      metrics.add(METRIC.outcomes, 'Count', 1, { outcome: 'content_policy' });
      metrics.flush();
    });

    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ outcome: 'content_policy', service: 'notify', Outcomes: 1 });
    expect(lines[0]?._aws.CloudWatchMetrics[0].Dimensions[0].sort()).toEqual(['outcome', 'service']);
  });

  it('count every HTTP 429 a fetch gets, and nothing else', async () => {
    const metrics = recordingMetrics();
    const statuses = [200, 429, 500, 429];
    const fetchImpl = countThrottles(async () => new Response('{}', { status: statuses.shift() }), metrics);
    for (let i = 0; i < 4; i++) await fetchImpl('https://dashscope.example/api/v1/tasks/x');
    expect(metrics.added).toEqual([
      { name: 'Throttles', unit: 'Count', value: 1 },
      { name: 'Throttles', unit: 'Count', value: 1 },
    ]);
  });
});

describe('a Lambda entry', () => {
  it('builds its handler once, adds the Lambda context, and flushes its metrics after every invocation, thrown or not', async () => {
    vi.stubEnv('POWERTOOLS_METRICS_NAMESPACE', 'Sd35Test');
    let builds = 0;
    const handler = lambdaEntry('poll', ({ logger, metrics }) => {
      builds++;
      return async (event: { fail?: boolean }) => {
        metrics.add(METRIC.polls, 'Count', 1);
        logger.info('handled');
        if (event.fail) throw new Error('boom');
        return 'ok';
      };
    });

    const lines = await stdoutOf(async () => {
      await handler({}, LAMBDA_CONTEXT);
      await expect(handler({ fail: true }, LAMBDA_CONTEXT)).rejects.toThrow('boom');
    });

    expect(builds).toBe(1);
    expect(lines.filter((line) => line.message === 'handled')).toEqual([
      expect.objectContaining({ function_request_id: LAMBDA_CONTEXT.awsRequestId }),
      expect.objectContaining({ function_request_id: LAMBDA_CONTEXT.awsRequestId }),
    ]);
    expect(lines.filter((line) => line.Polls === 1)).toHaveLength(2);
  });
});

describe('the Submit handler', () => {
  const submitAnswer = {
    request_id: 'req-submit-1',
    output: { task_id: 'task-1', task_status: 'PENDING' },
  };

  it('counts a created task and every 429 DashScope answers, logging with the correlation fields', async () => {
    const answers = [
      new Response(
        JSON.stringify({
          code: 'Throttling.RateQuota',
          message: 'Requests rate limit exceeded',
          request_id: 'r429',
        }),
        {
          status: 429,
          headers: { 'content-type': 'application/json' },
        },
      ),
      new Response(JSON.stringify(submitAnswer), {
        status: 200,
        headers: { 'content-type': 'application/json' },
      }),
    ];
    const metrics = recordingMetrics();
    const logger = recordingLogger();
    const handler = createSubmitHandler(
      submitDeps(submitSpec.parse({ DASHSCOPE_API_KEY: 'sk-test' }), {
        clock: { now: () => Date.parse('2026-01-01T00:00:00Z') },
        logger,
        metrics,
        fetch: async () => answers.shift() as Response,
      }),
    );
    const event = {
      id: 'gen-1',
      executionId: 'arn:aws:states:x:1:execution:sm:gen-1',
      request: { prompt: 'a secret prompt' },
    };

    await expect(handler(event)).rejects.toMatchObject({ name: 'DashScopeThrottledError' });
    await handler(event);

    expect(metrics.added.map((m) => m.name)).toEqual(['Throttles', 'Submits']);
    expect(logger.entries).toContainEqual(
      expect.objectContaining({
        message: 'DashScope task created',
        generationId: 'gen-1',
        executionId: event.executionId,
        taskId: 'task-1',
        dashscopeRequestId: 'req-submit-1',
      }),
    );
    expect(JSON.stringify(logger.entries)).not.toContain('a secret prompt');
  });
});

describe('the Notify handler', () => {
  const task = {
    taskId: 'task-1',
    seed: 1,
    submitRequestId: 'r1',
    submittedAt: '2026-01-01T00:00:00.000Z',
    deadline: '2026-01-01T01:00:00.000Z',
    status: 'failed',
    dashscopeStatus: 'FAILED',
    pollCount: 3,
    nextPollSeconds: 1,
    deadlineExceeded: false,
    error: { type: 'content_policy', code: 'DataInspectionFailed', message: 'refused' },
  };
  const result = (status: 'complete' | 'partial') => ({
    manifestKey: 'generations/gen-1/manifest.json',
    status,
    images: [],
    failed: [],
  });

  it.each<[string, NotifyInput, string]>([
    [
      'complete',
      { outcome: 'succeeded', state: { id: 'g', request: {}, result: result('complete') } },
      'succeeded',
    ],
    [
      'partial',
      { outcome: 'succeeded', state: { id: 'g', request: {}, result: result('partial') } },
      'partial',
    ],
    [
      'a task DashScope failed',
      {
        outcome: 'failed',
        state: { id: 'g', request: {}, task, failure: { Error: 'DashScopeTaskFailed', Cause: 'refused' } },
      },
      'content_policy',
    ],
    [
      'a Lambda error',
      { outcome: 'failed', state: { id: 'g', request: {}, failure: { Error: 'DashScopeAuthError' } } },
      'auth',
    ],
    [
      'anything else',
      { outcome: 'failed', state: { id: 'g', request: {}, failure: { Error: 'Sandbox.Timedout' } } },
      'internal_error',
    ],
  ])('names the outcome of %s', (_case, input, outcome) => {
    expect(outcomeOf(input)).toBe(outcome);
  });

  it('counts the outcome and the seconds from the execution’s start to the images stored', async () => {
    const metrics = recordingMetrics();
    const handler = createNotifyHandler({
      events: { publish: async () => {} },
      objects: {} as never,
      bucket: 'b',
      logger: recordingLogger(),
      webhookPolicy: {},
      metrics,
      clock: { now: () => Date.parse('2026-01-01T00:02:05.500Z') },
    });

    await handler({
      outcome: 'succeeded',
      state: { id: 'gen-1', request: { prompt: 'p' }, result: result('complete') },
      executionId: 'arn:aws:states:x:1:execution:sm:gen-1',
      startedAt: '2026-01-01T00:00:00.000Z',
    });

    expect(metrics.added).toEqual([
      { name: 'Outcomes', unit: 'Count', value: 1, dimensions: { outcome: 'succeeded' } },
      { name: 'SecondsToImages', unit: 'Seconds', value: 125.5 },
    ]);
  });
});
