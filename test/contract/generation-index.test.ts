import { beforeEach, describe, expect, it } from 'vitest';
import { createDynamoGenerationIndex } from '../../functions/shared/aws/dynamodb-index.js';
import {
  FINAL_STAGE,
  type GenerationIndex,
  type GenerationUpdate,
  RegistrationConflictError,
  STAGE,
} from '../../functions/shared/generation-index.js';
import { MemoryGenerationIndex } from '../fakes/memory-index.js';
import { useLocalTables } from '../support/local-tables.js';

/**
 * One contract for every implementation of the generations index: the in-memory fake the API
 * tests use, and the DynamoDB adapter against dynalite with the table the CDK stack declares.
 * A fake that drifts from the real adapter fails here.
 */

const tables = useLocalTables('generations');

const implementations: [string, () => Promise<GenerationIndex>][] = [
  ['the in-memory fake', async () => new MemoryGenerationIndex()],
  [
    'the DynamoDB adapter on dynalite',
    async () => createDynamoGenerationIndex(tables.client(), await tables.fresh()),
  ],
];

const request = (prompt = 'a lighthouse') => ({ prompt, n: 1, model: 'stable-diffusion-3.5-large' });

const at = (second: number) => new Date(Date.UTC(2026, 2, 1, 12, 0, second)).toISOString();

function update(id: string, stage: number, changes: Partial<GenerationUpdate> = {}): GenerationUpdate {
  return { id, stage, status: 'running', createdAt: at(0), source: 'api', ...changes };
}

describe.each(implementations)('%s', (_name, create) => {
  let index: GenerationIndex;

  beforeEach(async () => {
    index = await create();
  });

  it('answers undefined for an unknown id', async () => {
    expect(await index.get('gen-missing')).toBeUndefined();
  });

  it('registers a generation queued at stage 0 with its facts', async () => {
    await index.register({
      id: 'gen-1',
      createdAt: at(1),
      source: 'api',
      caller: 'alice',
      request: request(),
    });

    expect(await index.get('gen-1')).toMatchObject({
      id: 'gen-1',
      createdAt: at(1),
      source: 'api',
      caller: 'alice',
      status: 'queued',
      stage: STAGE.registered,
      request: request(),
    });
  });

  it('accepts the same registration twice, and tells the second what it found', async () => {
    const registration = { id: 'gen-1', createdAt: at(1), source: 'api' as const, request: request() };
    const first = await index.register(registration);

    const second = await index.register({ ...registration, createdAt: at(5) });

    expect(first).toEqual({});
    expect(second.existing).toMatchObject({ id: 'gen-1', createdAt: at(1), status: 'queued' });
  });

  it('lets exactly one of concurrent registrations of one id create it', async () => {
    const outcomes = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        index.register({ id: 'gen-1', createdAt: at(i), source: 'api', request: request() }),
      ),
    );

    const created = outcomes.filter((outcome) => outcome.existing === undefined);
    expect(created).toHaveLength(1);
    const kept = (await index.get('gen-1'))?.createdAt;
    expect(outcomes.flatMap((outcome) => outcome.existing?.createdAt ?? [])).toEqual(Array(19).fill(kept));
  });

  it('keeps each source as registered', async () => {
    for (const source of ['api', 'console', 'cli', 'local'] as const) {
      await index.register({ id: `gen-${source}`, createdAt: at(1), source, request: request() });
      expect((await index.get(`gen-${source}`))?.source).toBe(source);
    }
  });

  it('refuses a registration of the same id with another request', async () => {
    await index.register({ id: 'gen-1', createdAt: at(1), source: 'api', request: request('a') });

    await expect(
      index.register({ id: 'gen-1', createdAt: at(1), source: 'api', request: request('b') }),
    ).rejects.toBeInstanceOf(RegistrationConflictError);
  });

  it('never changes the status on a registration that comes after the workflow wrote', async () => {
    await index.advance(update('gen-1', 3, { request: request() }));

    await index.register({ id: 'gen-1', createdAt: at(9), source: 'api', caller: 'bob', request: request() });

    expect(await index.get('gen-1')).toMatchObject({
      status: 'running',
      stage: 3,
      caller: 'bob',
      createdAt: at(0),
    });
  });

  it('applies a later stage and reports it', async () => {
    await index.register({ id: 'gen-1', createdAt: at(1), source: 'api', request: request() });

    const applied = await index.advance(update('gen-1', 2, { progress: { done: 1, failed: 0, total: 2 } }));

    expect(applied).toBe(true);
    expect(await index.get('gen-1')).toMatchObject({
      status: 'running',
      stage: 2,
      progress: { done: 1, total: 2 },
    });
  });

  it('drops a stage that is not later: a late or repeated update never moves it back', async () => {
    await index.advance(update('gen-1', FINAL_STAGE, { status: 'succeeded', manifestKey: 'm.json' }));

    const applied = await index.advance(update('gen-1', 5, { status: 'running' }));
    const repeated = await index.advance(update('gen-1', FINAL_STAGE, { status: 'failed' }));

    expect([applied, repeated]).toEqual([false, false]);
    expect(await index.get('gen-1')).toMatchObject({
      status: 'succeeded',
      stage: FINAL_STAGE,
      manifestKey: 'm.json',
    });
  });

  it('keeps each image with its thumbnail, and an image without one as it is', async () => {
    const thumbnail = {
      key: 'generations/gen-1/thumbnails/0.webp',
      bytes: 5120,
      contentType: 'image/webp',
      width: 256,
      height: 192,
    };
    const image = {
      key: 'generations/gen-1/0.png',
      bytes: 90_000,
      sha256: 'a'.repeat(64),
      contentType: 'image/png',
    };
    const images = [
      { index: 0, seed: 7, ...image, thumbnail },
      { index: 1, seed: 8, ...image, key: 'generations/gen-1/1.png' },
    ];

    await index.advance(update('gen-1', FINAL_STAGE, { status: 'succeeded', images }));

    expect((await index.get('gen-1'))?.images).toEqual(images);
  });

  it('creates the record from an update when nothing registered it, keeping the first creation time', async () => {
    await index.advance(update('evt-1', 1, { createdAt: at(4), source: 'event', request: request() }));
    await index.advance(update('evt-1', 2, { createdAt: at(8), source: 'direct' }));

    expect(await index.get('evt-1')).toMatchObject({ createdAt: at(4), source: 'event', request: request() });
  });

  it('lists newest first, then by id, with whether more follow', async () => {
    for (const [id, second] of [
      ['gen-a', 1],
      ['gen-c', 3],
      ['gen-b', 3],
      ['gen-d', 2],
    ] as const) {
      await index.register({ id, createdAt: at(second), source: 'api', request: request() });
    }

    const first = await index.list({ limit: 3 });
    const last = first.items.at(-1);
    const second = await index.list({ limit: 3, after: last });

    expect(first.items.map((item) => item.id)).toEqual(['gen-c', 'gen-b', 'gen-d']);
    expect(first.more).toBe(true);
    expect(second.items.map((item) => item.id)).toEqual(['gen-a']);
    expect(second.more).toBe(false);
  });

  it('says nothing more follows when the page is exactly full', async () => {
    await index.register({ id: 'gen-a', createdAt: at(1), source: 'api', request: request() });
    await index.register({ id: 'gen-b', createdAt: at(2), source: 'api', request: request() });

    expect((await index.list({ limit: 2 })).more).toBe(false);
  });

  it('lists one status, newest first', async () => {
    await index.register({ id: 'gen-a', createdAt: at(1), source: 'api', request: request() });
    await index.advance(update('gen-b', FINAL_STAGE, { status: 'failed', createdAt: at(2) }));
    await index.advance(update('gen-c', FINAL_STAGE, { status: 'failed', createdAt: at(3) }));

    const page = await index.list({ status: 'failed', limit: 5 });

    expect(page.items.map((item) => item.id)).toEqual(['gen-c', 'gen-b']);
    expect(page.more).toBe(false);
  });

  it('answers an empty page, with nothing more, for a status nothing has', async () => {
    await index.register({ id: 'gen-a', createdAt: at(1), source: 'api', request: request() });

    expect(await index.list({ status: 'canceled', limit: 5 })).toEqual({ items: [], more: false });
  });
});
