import { describe, expect, it } from 'vitest';
import { canonicalJson } from '../../functions/shared/canonical-json.js';
import type { Clock } from '../../functions/shared/clock.js';
import { DETAIL_TYPE, SCHEDULED_DETAIL_TYPE } from '../../functions/shared/events.js';
import { ExecutionAlreadyExistsError } from '../../functions/shared/execution-service.js';
import { silentLogger } from '../../functions/shared/logger.js';
import { createRequestEventHandler } from '../../functions/trigger/handler.js';
import { MemoryBatchIndex, MemoryGenerationIndex } from '../fakes/memory-index.js';

const clock: Clock = { now: () => Date.parse('2026-03-01T12:00:00.000Z') };

/** The trigger over an index, a recording publisher and executions with StartExecution's name rules. */
function setup() {
  const index = new MemoryGenerationIndex();
  const running = new Map<string, unknown>();
  const published: { detailType: string; detail: Record<string, unknown> }[] = [];
  const handle = createRequestEventHandler({
    objects: {
      getText: async () => {
        throw new Error('request events read no object');
      },
      putJson: async () => {
        throw new Error('request events write no object');
      },
      putText: async () => {
        throw new Error('request events write no object');
      },
    },
    executions: {
      start: async (name, input) => {
        const existing = running.get(name);
        if (existing !== undefined && canonicalJson(existing) !== canonicalJson(input)) {
          throw new ExecutionAlreadyExistsError(name);
        }
        running.set(name, input);
        return { startDate: new Date(clock.now()) };
      },
      describe: async () => {
        throw new Error('request events describe no execution');
      },
    },
    index,
    batches: new MemoryBatchIndex(index),
    clock,
    events: { publish: async (detailType, detail) => void published.push({ detailType, detail }) },
    logger: silentLogger,
  });
  return { handle, index, running, published };
}

const requested = (id: string, detail: unknown) => ({
  id,
  'detail-type': DETAIL_TYPE.requested,
  source: 'sd35.requests',
  time: '2026-03-01T12:00:00Z',
  detail,
});

describe('"Generation Requested" events through the trigger', () => {
  it('starts one generation named after the event id, recorded with source event', async () => {
    const { handle, index, running } = setup();

    const result = await handle(requested('ev-1', { prompt: 'a heron' }));

    expect(result).toMatchObject({ status: 'started', id: expect.stringMatching(/^evt-[\w-]{40}$/) });
    expect([...running.keys()]).toEqual([result.id]);
    expect(await index.get(result.id ?? '')).toMatchObject({ source: 'event', status: 'queued' });
  });

  it('starts one generation for an event delivered twice', async () => {
    const { handle, running } = setup();

    const first = await handle(requested('ev-1', { prompt: 'a heron' }));
    const second = await handle(requested('ev-1', { prompt: 'a heron' }));

    expect(second.id).toBe(first.id);
    expect(running.size).toBe(1);
  });

  it('starts two generations for two events with the same request', async () => {
    const { handle, running } = setup();

    await handle(requested('ev-1', { prompt: 'a heron' }));
    await handle(requested('ev-2', { prompt: 'a heron' }));

    expect(running.size).toBe(2);
  });

  it('rejects an invalid request naming the field, announces it, and starts nothing', async () => {
    const { handle, running, published } = setup();

    const result = await handle(requested('ev-1', { prompt: 'a heron', n: 9 }));

    expect(result).toMatchObject({ status: 'rejected', error: { type: 'invalid_request' } });
    expect(result.error?.message).toMatch(/^n: /);
    expect(running.size).toBe(0);
    expect(published).toEqual([
      expect.objectContaining({
        detailType: DETAIL_TYPE.rejected,
        detail: expect.objectContaining({ source: { eventId: 'ev-1', source: 'sd35.requests' } }),
      }),
    ]);
  });
});

describe('schedules through the trigger', () => {
  const fired = (id: string) => ({
    id,
    'detail-type': SCHEDULED_DETAIL_TYPE,
    time: '2026-03-01T12:00:00Z',
    detail: { schedule: 'nightly', request: { prompt: 'an owl' } },
  });

  it('starts the schedule’s request once per firing, recorded with source schedule', async () => {
    const { handle, index, running } = setup();

    const first = await handle(fired('fire-1'));
    await handle(fired('fire-1'));
    const next = await handle(fired('fire-2'));

    expect(first.id).toMatch(/^sch-/);
    expect(next.id).not.toBe(first.id);
    expect(running.size).toBe(2);
    expect(await index.get(first.id ?? '')).toMatchObject({ source: 'schedule' });
  });
});
