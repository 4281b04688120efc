import { describe, expect, it } from 'vitest';
import { createApiApp } from '../../functions/api/app.js';
import type { GenerationView } from '../../functions/api/schemas.js';
import type { AdmissionSettings } from '../../functions/shared/admission.js';
import { silentLogger } from '../../functions/shared/logger.js';
import { MemoryAdmissionQueue } from '../../local/memory-admission.js';
import { MemoryGenerationIndex } from '../fakes/memory-index.js';
import { FakeExecutionService } from './fake-executions.js';
import { fakePresign } from './fixtures.js';

/** The queue as the API shows it: a waiting generation's lane, position and start estimate. */
const NOW = Date.UTC(2026, 2, 1, 12, 0, 0);
const clock = { now: () => NOW };
const SETTINGS: AdmissionSettings = {
  accounts: [{ name: 'main', depth: 1, submitsPerSecond: 2 }],
  batchEvery: 4,
  maxQueueSeconds: 604_800,
};

function setup() {
  const index = new MemoryGenerationIndex();
  const executions = new FakeExecutionService(clock, index);
  const queue = new MemoryAdmissionQueue();
  const app = createApiApp({
    executions,
    index,
    presign: fakePresign,
    clock,
    logger: silentLogger,
    admission: { queue, settings: SETTINGS },
  });
  /** Creates a generation through the API and puts it in the queue as Admit would. */
  const waiting = async (body: Record<string, unknown>, at: number) => {
    const response = await app.request('/v1/generations', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const { id } = (await response.json()) as { id: string };
    const lane = (body.priority as 'batch' | undefined) ?? 'interactive';
    await queue.enqueue({ id, lane, enqueuedAt: NOW + at, expectedRunSeconds: 20, token: `token-${id}` });
    return id;
  };
  const view = async (id: string) =>
    (await (await app.request(`/v1/generations/${id}`)).json()) as GenerationView;
  return { app, queue, waiting, view };
}

describe('the queue in GET /v1/generations/{id}', () => {
  it('shows the lane, the grants before it and when its task should start, behind a held slot', async () => {
    const { queue, waiting, view } = setup();
    const running = await waiting({ prompt: 'holds the slot', priority: 'batch' }, 0);
    await queue.grant(running, 'main', NOW);
    await queue.note(running, { startedAt: NOW - 5000 });
    const batch = await waiting({ prompt: 'batch', priority: 'batch' }, 1);
    const first = await waiting({ prompt: 'first' }, 2);
    const second = await waiting({ prompt: 'second' }, 3);

    expect((await view(first)).queue).toEqual({
      lane: 'interactive',
      position: 0,
      // The held task has 15 s of its 20 s left.
      estimatedStartAt: new Date(NOW + 15_000).toISOString(),
    });
    expect((await view(second)).queue).toMatchObject({ lane: 'interactive', position: 1 });
    expect((await view(second)).queue?.estimatedStartAt).toBe(new Date(NOW + 35_000).toISOString());
    expect((await view(batch)).queue).toMatchObject({ lane: 'batch', position: 2 });
    expect((await view(running)).queue).toBeUndefined();
  });

  it('is absent once the generation holds a slot', async () => {
    const { queue, waiting, view } = setup();
    const id = await waiting({ prompt: 'granted' }, 0);
    await queue.grant(id, 'main', NOW);

    expect((await view(id)).queue).toBeUndefined();
  });

  it('takes a canceled generation out of the queue at once', async () => {
    const { app, queue, waiting } = setup();
    const id = await waiting({ prompt: 'never mind' }, 0);

    const response = await app.request(`/v1/generations/${id}/cancel`, { method: 'POST' });

    expect(((await response.json()) as GenerationView).status).toBe('canceled');
    expect(await queue.get(id)).toBeUndefined();
  });
});
