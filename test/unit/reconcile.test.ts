import { createServer, type IncomingMessage, type Server } from 'node:http';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createNotifyHandler } from '../../functions/notify/handler.js';
import { type NotifyDeps, type NotifyInput, notifyCompletion } from '../../functions/notify/notify.js';
import { reconcileExecution, type StatusChangeEvent } from '../../functions/notify/reconcile.js';
import { createReconcileHandler } from '../../functions/notify/reconcile-handler.js';
import {
  DETAIL_TYPE,
  type DeadLetteredAnnouncement,
  deliveryId,
  EventNotPublishedError,
} from '../../functions/shared/events.js';
import { FINAL_STAGE } from '../../functions/shared/generation-index.js';
import { silentLogger } from '../../functions/shared/logger.js';
import { MemoryGenerationIndex } from '../fakes/memory-index.js';
import { closeServer, listenOnLoopback } from '../support/loopback.js';

/**
 * The reconciler announces every end Notify did not (a stop, a timeout, a failure or success
 * whose Notify state never ran), exactly once: Notify's first act is the generation's final index
 * write, so a record the reconciler had to end is one Notify never saw, and a second delivery of
 * the same status change finds it ended.
 */
let index: MemoryGenerationIndex;
let announced: NotifyInput[];

beforeEach(() => {
  index = new MemoryGenerationIndex();
  announced = [];
});

const deps = () => ({
  index,
  executions: { describe: async () => undefined },
  announce: async (input: NotifyInput) => void announced.push(input),
  logger: silentLogger,
});

const request = { prompt: 'an eagle', n: 1 };

function ended(
  status: StatusChangeEvent['detail']['status'],
  extra: Partial<StatusChangeEvent['detail']> = {},
): StatusChangeEvent {
  return {
    'detail-type': 'Step Functions Execution Status Change',
    detail: {
      name: 'gen-1',
      status,
      startDate: Date.parse('2026-01-01T00:00:00Z'),
      stopDate: Date.parse('2026-01-01T00:10:00Z'),
      input: JSON.stringify(request),
      ...extra,
    },
  };
}

const started = ended('RUNNING', { stopDate: null });

/** The record as Notify leaves it: its final write, the first thing it does. */
async function notifyRan(status: 'failed' | 'succeeded' = 'failed') {
  await index.advance({
    id: 'gen-1',
    stage: FINAL_STAGE,
    status,
    createdAt: '2026-01-01T00:00:00.000Z',
    source: 'direct',
    endedAt: '2026-01-01T00:09:59.000Z',
  });
}

describe('an execution that FAILED', () => {
  const failedEvent = ended('FAILED', {
    error: 'States.Runtime',
    cause: 'An error occurred while executing the state',
  });

  it('is announced once, as Notify would, when Notify never ran', async () => {
    await reconcileExecution(started, deps());

    const first = await reconcileExecution(failedEvent, deps());
    const again = await reconcileExecution(failedEvent, deps());

    expect(first).toEqual({ corrected: true, announced: true });
    expect(again).toEqual({ corrected: false, announced: false });
    expect(announced).toEqual([
      {
        outcome: 'failed',
        lastAttempt: true,
        state: {
          id: 'gen-1',
          request,
          failure: { Error: 'States.Runtime', Cause: 'An error occurred while executing the state' },
        },
      },
    ]);
    expect(await index.get('gen-1')).toMatchObject({ status: 'failed', stage: FINAL_STAGE });
  });

  it('is not announced when Notify ran (its final index write is there)', async () => {
    await notifyRan();

    const result = await reconcileExecution(failedEvent, deps());

    expect(result).toEqual({ corrected: false, announced: false });
    expect(announced).toEqual([]);
  });

  it('announces nothing, and throws for Lambda to retry, when the index cannot be written', async () => {
    index.failure = new Error('DynamoDB unreachable');

    await expect(reconcileExecution(failedEvent, deps())).rejects.toThrow(/DynamoDB unreachable/);
    expect(announced).toEqual([]);

    index.failure = undefined;
    expect(await reconcileExecution(failedEvent, deps())).toEqual({ corrected: true, announced: true });
    expect(announced).toHaveLength(1);
  });
});

describe('an execution that TIMED_OUT', () => {
  it('is announced once as States.Timeout when Notify never ran, and not at all when it did', async () => {
    await reconcileExecution(ended('TIMED_OUT'), deps());
    await reconcileExecution(ended('TIMED_OUT'), deps());
    expect(announced.map((input) => input.state.failure)).toEqual([
      { Error: 'States.Timeout', Cause: 'The workflow timed out' },
    ]);

    index = new MemoryGenerationIndex();
    announced = [];
    await notifyRan();
    await reconcileExecution(ended('TIMED_OUT'), deps());
    expect(announced).toEqual([]);
  });
});

describe('an execution that was ABORTED', () => {
  it('is announced as canceled, also when the API recorded the cancel first (a stop never reaches Notify)', async () => {
    // The API's cancel records the generation canceled, at the final stage, after its StopExecution.
    await index.advance({
      id: 'gen-1',
      stage: FINAL_STAGE,
      status: 'canceled',
      createdAt: '2026-01-01T00:00:00.000Z',
      source: 'api',
    });

    const result = await reconcileExecution(
      ended('ABORTED', { error: 'DashScopeTaskCanceled', cause: 'Canceled by the caller' }),
      deps(),
    );

    expect(result.announced).toBe(true);
    expect(announced[0]).toMatchObject({
      outcome: 'failed',
      lastAttempt: true,
      state: { failure: { Error: 'DashScopeTaskCanceled', Cause: 'Canceled by the caller' } },
    });
  });
});

describe('an execution that SUCCEEDED', () => {
  const image = {
    index: 0,
    key: 'generations/gen-1/0.png',
    bytes: 10,
    sha256: 'a'.repeat(64),
    contentType: 'image/png',
    seed: 7,
  };
  const result = {
    status: 'complete',
    manifestKey: 'generations/gen-1/manifest.json',
    images: [image],
    failed: [],
  };

  it('is announced with its images when Notify never ran (throttled to the end of its retries)', async () => {
    const output = {
      id: 'gen-1',
      request,
      result,
      notificationError: { Error: 'Lambda.TooManyRequestsException' },
    };

    await reconcileExecution(ended('SUCCEEDED', { output: JSON.stringify(output) }), deps());
    await reconcileExecution(ended('SUCCEEDED', { output: JSON.stringify(output) }), deps());

    expect(announced).toHaveLength(1);
    expect(announced[0]).toMatchObject({
      outcome: 'succeeded',
      lastAttempt: true,
      state: { id: 'gen-1', result },
    });
  });

  it('is not announced when Notify returned, even if its own index write was lost', async () => {
    const output = { id: 'gen-1', request, result, notification: { event: 'published' } };

    const outcome = await reconcileExecution(ended('SUCCEEDED', { output: JSON.stringify(output) }), deps());

    expect(outcome).toEqual({ corrected: true, announced: false });
    expect(announced).toEqual([]);
  });
});

describe('the reconciler’s announcement, through the notifier', () => {
  let server: Server | undefined;
  let hooks: Array<IncomingMessage['headers']>;
  let url: string;

  beforeEach(async () => {
    hooks = [];
    server = createServer((req, res) => {
      hooks.push(req.headers);
      req.resume();
      req.on('end', () => res.writeHead(204).end());
    });
    url = `${await listenOnLoopback(server)}/hook`;
  });

  afterEach(async () => {
    await closeServer(server);
    server = undefined;
  });

  function notifier(refuse: boolean) {
    const published: Array<Record<string, unknown>> = [];
    const letters: DeadLetteredAnnouncement[] = [];
    const notify: NotifyDeps = {
      events: {
        async publish(_type, detail) {
          if (refuse) throw new Error('EventBridge refused the event: ThrottlingException');
          published.push(detail);
        },
      },
      objects: { getText: async () => '', putJson: async () => {}, putText: async () => {} },
      bucket: 'images',
      logger: silentLogger,
      webhookSecret: async () => 'a-test-secret-of-some-length',
      webhookPolicy: { allowHttp: true, allowPrivateAddresses: true },
      webhookTiming: { attempts: 1, timeoutMs: 5000 },
      callTiming: { firstBackoffMs: 1, timeoutMs: 200 },
      deadLetters: { send: async (letter) => void letters.push(letter) },
    };
    return { notify, published, letters };
  }

  const withHook = (status: StatusChangeEvent['detail']['status']) =>
    ended(status, { input: JSON.stringify({ ...request, webhook_url: url }), error: 'States.Runtime' });

  it('publishes the event and sends the webhook once, a repeated status change included', async () => {
    const { notify, published } = notifier(false);
    const handler = createReconcileHandler({
      ...deps(),
      announce: (input) => notifyCompletion(input, notify),
    });

    await handler(withHook('FAILED'));
    await handler(withHook('FAILED'));

    expect(published).toHaveLength(1);
    expect(published[0]?.eventId).toBe(deliveryId('evt', 'gen-1', DETAIL_TYPE.failed));
    expect(hooks).toHaveLength(1);
  });

  it('dead-letters an event EventBridge refuses (its last attempt) and still sends the webhook, without failing', async () => {
    const { notify, published, letters } = notifier(true);
    const handler = createReconcileHandler({
      ...deps(),
      announce: (input) => notifyCompletion(input, notify),
    });

    await expect(handler(withHook('TIMED_OUT'))).resolves.toEqual({ corrected: true, announced: true });

    expect(published).toEqual([]);
    expect(letters).toHaveLength(1);
    expect(letters[0]).toMatchObject({ generationId: 'gen-1', detailType: DETAIL_TYPE.failed });
    expect(hooks).toHaveLength(1);
  });

  it('announces nothing after Notify ran, as the workflow runs it, event refused and dead-lettered', async () => {
    const { notify, published, letters } = notifier(true);
    const notifyHandler = createNotifyHandler({ ...notify, index });
    const state = {
      id: 'gen-1',
      request: { ...request, webhook_url: url },
      failure: { Error: 'DashScopeTaskFailed' },
    };

    // Notify: refused (the workflow would retry), then its last attempt dead-letters the event.
    await expect(notifyHandler({ outcome: 'failed', state })).rejects.toBeInstanceOf(EventNotPublishedError);
    await notifyHandler({ outcome: 'failed', lastAttempt: true, state });
    // The execution ends FAILED: the reconciler finds Notify's end in the index.
    const result = await reconcileExecution(withHook('FAILED'), {
      ...deps(),
      announce: (input) => notifyCompletion(input, notify),
    });

    expect(result).toEqual({ corrected: false, announced: false });
    expect(published).toEqual([]);
    expect(letters).toHaveLength(1);
    expect(hooks).toHaveLength(1);
  });
});
