import { describe, expect, it } from 'vitest';
import { createAdmitHandler } from '../../functions/admit/handler.js';
import { silentLogger } from '../../functions/shared/logger.js';
import { DEFAULT_RUN_TIME_MODEL, estimateRun } from '../../functions/shared/run-time-estimate.js';
import { queueText } from '../../local/cli/download.js';
import { MemoryAdmissionQueue } from '../../local/memory-admission.js';

const NOW = Date.UTC(2026, 10, 30, 12, 0, 0);

function setup() {
  const queue = new MemoryAdmissionQueue();
  let kicks = 0;
  const handler = createAdmitHandler({
    admission: {
      queue,
      kick: async () => {
        kicks += 1;
      },
    },
    clock: { now: () => NOW },
    logger: silentLogger,
    runTimeModel: DEFAULT_RUN_TIME_MODEL,
  });
  return { queue, handler, kicks: () => kicks };
}

describe('Admit', () => {
  it('queues a request that names no priority as batch, with its token and run estimate, and rings the dispatcher', async () => {
    const { queue, handler, kicks } = setup();

    await handler({ id: 'evt-1', request: { prompt: 'an owl', n: 2 }, taskToken: 'token-1' });

    const request = { model: 'stable-diffusion-3.5-large', size: '1024*1024', steps: 40, n: 2 } as const;
    expect(await queue.waiting('batch', 10)).toEqual([
      {
        id: 'evt-1',
        lane: 'batch',
        enqueuedAt: NOW,
        expectedRunSeconds: estimateRun(request).seconds,
        token: 'token-1',
        // Outside any batch: in the round after the lane's clock, the lane's first.
        order: { round: 1, arrival: 1, solo: 1 },
      },
    ]);
    expect(kicks()).toBe(1);
  });

  it('queues an interactive request in the interactive lane', async () => {
    const { queue, handler } = setup();

    await handler({ id: 'gen-1', request: { prompt: 'now', priority: 'interactive' }, taskToken: 't' });

    expect((await queue.waiting('interactive', 10)).map((entry) => entry.id)).toEqual(['gen-1']);
  });

  it('refuses a bad request before it waits, naming the field, and queues nothing', async () => {
    const { queue, handler, kicks } = setup();

    await expect(
      handler({ id: 'gen-2', request: { prompt: 'x', priority: 'urgent' }, taskToken: 't' }),
    ).rejects.toMatchObject({ name: 'InvalidRequestError', message: expect.stringContaining('priority') });
    expect(await queue.count('batch')).toBe(0);
    expect(await queue.count('interactive')).toBe(0);
    expect(kicks()).toBe(0);
  });
});

describe('the CLI’s queue text', () => {
  it('says the place (1 is next), the lane and the estimated start while waiting', () => {
    const view = {
      queue: { lane: 'batch' as const, position: 2, estimatedStartAt: '2026-11-30T17:02:10.000Z' },
    };
    expect(queueText(view as never)).toBe(' · queue #3 (batch), starts ~17:02:10 UTC');
  });

  it('is empty once the generation is granted', () => {
    expect(queueText({} as never)).toBe('');
  });
});
