import {
  DescribeExecutionCommand,
  GetExecutionHistoryCommand,
  ListExecutionsCommand,
  SFNClient,
  StartExecutionCommand,
} from '@aws-sdk/client-sfn';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { createApiApp } from '../../functions/api/app.js';
import { createSfnExecutionService } from '../../functions/shared/aws/sfn-execution-service.js';
import type { Clock } from '../../functions/shared/clock.js';
import { FINAL_STAGE } from '../../functions/shared/generation-index.js';
import { silentLogger } from '../../functions/shared/logger.js';
import { MemoryGenerationIndex } from '../fakes/memory-index.js';
import { fakePresign } from './fixtures.js';

/**
 * The API's reads never touch Step Functions' quotas: over the real Step Functions adapter, with
 * a client on which DescribeExecution, GetExecutionHistory and ListExecutions fail, every GET and
 * list is still answered, from the index.
 */

const STATE_MACHINE_ARN = 'arn:aws:states:eu-west-1:123456789012:stateMachine:Sd35Generations';
const clock: Clock = { now: () => Date.parse('2026-03-01T12:00:00.000Z') };
const sfn = mockClient(SFNClient);

function setup() {
  const index = new MemoryGenerationIndex();
  index.seed({
    id: 'gen-done',
    createdAt: '2026-03-01T11:00:00.000Z',
    updatedAt: '2026-03-01T11:01:00.000Z',
    source: 'api',
    status: 'succeeded',
    stage: FINAL_STAGE,
    request: { prompt: 'a kite', n: 1 },
    progress: { done: 1, failed: 0, total: 1 },
    images: [
      {
        index: 0,
        key: 'generations/gen-done/0.png',
        bytes: 10,
        sha256: 'x',
        contentType: 'image/png',
        seed: 1,
      },
    ],
    manifestKey: 'generations/gen-done/manifest.json',
  });
  const app = createApiApp({
    executions: createSfnExecutionService(new SFNClient({ region: 'eu-west-1' }), STATE_MACHINE_ARN),
    index,
    presign: fakePresign,
    clock,
    logger: silentLogger,
  });
  return { app };
}

beforeEach(() => {
  sfn.reset();
  sfn.on(DescribeExecutionCommand).rejects(new Error('DescribeExecution must not be called by a read'));
  sfn.on(GetExecutionHistoryCommand).rejects(new Error('GetExecutionHistory must not be called by a read'));
  sfn.on(ListExecutionsCommand).rejects(new Error('ListExecutions must not be called by a read'));
  sfn.on(StartExecutionCommand).resolves({ executionArn: `${STATE_MACHINE_ARN}:x`, startDate: new Date() });
});

describe('reads served by the index only', () => {
  it('answers GET of a generation without calling Step Functions', async () => {
    const { app } = setup();

    const response = await app.request('/v1/generations/gen-done');

    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ status: 'succeeded', images: [{ index: 0 }] });
    expect(sfn.calls()).toHaveLength(0);
  });

  it.each(['', '?status=succeeded', '?status=failed&limit=5'])(
    'answers a list%s without calling Step Functions',
    async (query) => {
      const { app } = setup();

      const response = await app.request(`/v1/generations${query}`);

      expect(response.status).toBe(200);
      expect(sfn.calls()).toHaveLength(0);
    },
  );

  it('answers GET right after a create from the index, having called only StartExecution', async () => {
    const { app } = setup();
    const created = await app.request('/v1/generations', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'a heron' }),
    });
    const { id } = (await created.json()) as { id: string };

    const response = await app.request(`/v1/generations/${id}`);

    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ id, status: 'queued', source: 'api' });
    expect(sfn.calls().map((call) => call.args[0].constructor.name)).toEqual(['StartExecutionCommand']);
  });
});
