import type { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { type ApiOptions, createApiApp } from '../../functions/api/app.js';
import type { BatchView } from '../../functions/api/batches.js';
import { GALLERY_PAGE_SIZE } from '../../functions/api/console/app.js';
import { BATCHES_PAGE_SIZE } from '../../functions/api/console/batch-pages.js';
import { relativeFromNow } from '../../functions/api/console/relative-time.js';
import type { AdmissionSettings } from '../../functions/shared/admission.js';
import { type BatchSource, batchLineId, type NewBatch, rejectedKeyOf } from '../../functions/shared/batch.js';
import type { Clock } from '../../functions/shared/clock.js';
import type { GenerationRecord } from '../../functions/shared/generation-index.js';
import { generationRequestSchema } from '../../functions/shared/generation-request.js';
import { silentLogger } from '../../functions/shared/logger.js';
import type { ObjectLocation, ObjectStore } from '../../functions/shared/object-store.js';
import { MemoryAdmissionQueue } from '../../local/memory-admission.js';
import { FakeExecutionService } from '../api/fake-executions.js';
import { fakePresign } from '../api/fixtures.js';
import { MemoryBatchIndex, MemoryGenerationIndex } from '../fakes/memory-index.js';

const NOW = Date.parse('2026-03-01T12:34:56.789Z');
const clock: Clock = { now: () => NOW };
const ORIGIN = 'http://localhost';
const BUCKET = 'test-bucket';
/** What a browser sends with a same-origin form. */
const sameOrigin = { origin: ORIGIN, 'content-type': 'application/x-www-form-urlencoded' };
const SETTINGS: AdmissionSettings = {
  accounts: [{ name: 'main', depth: 1, submitsPerSecond: 2 }],
  batchEvery: 4,
  maxQueueSeconds: 604_800,
};

/** Objects in memory: what `rejected.json` is read from. */
class MemoryObjects implements ObjectStore {
  readonly items = new Map<string, string>();
  async getText({ bucket, key }: ObjectLocation): Promise<string> {
    const text = this.items.get(`${bucket}/${key}`);
    if (text === undefined) throw new Error(`NoSuchKey: ${key}`);
    return text;
  }
  async putJson({ bucket, key }: Omit<ObjectLocation, 'versionId'>, value: unknown): Promise<void> {
    this.items.set(`${bucket}/${key}`, `${JSON.stringify(value, null, 2)}\n`);
  }
  async putText({ bucket, key }: Omit<ObjectLocation, 'versionId'>, body: string): Promise<void> {
    this.items.set(`${bucket}/${key}`, body);
  }
}

function setup(options: ApiOptions & { admission?: boolean; withBatches?: boolean } = {}) {
  const { admission, withBatches = true, ...apiOptions } = options;
  const index = new MemoryGenerationIndex();
  const batches = new MemoryBatchIndex(index);
  const objects = new MemoryObjects();
  const executions = new FakeExecutionService(clock, index);
  const app: Hono = createApiApp(
    {
      executions,
      index,
      presign: fakePresign,
      clock,
      logger: silentLogger,
      ...(withBatches ? { batches, objects, bucket: BUCKET } : {}),
      ...(admission ? { admission: { queue: new MemoryAdmissionQueue(), settings: SETTINGS } } : {}),
    },
    { console: true, ...apiOptions },
  );
  return { app, index, batches, objects, executions };
}

type World = ReturnType<typeof setup>;

const request = (input: Record<string, unknown> = {}) =>
  generationRequestSchema.parse({ prompt: 'a lighthouse at dusk', ...input }) as Record<string, unknown>;

function record(id: string, overrides: Partial<GenerationRecord> = {}): GenerationRecord {
  return {
    id,
    createdAt: '2026-03-01T12:00:00.000Z',
    updatedAt: '2026-03-01T12:00:00.000Z',
    source: 'api',
    status: 'queued',
    stage: 0,
    request: request(),
    ...overrides,
  };
}

const ENDED = 1_000_000_000;

function succeeded(overrides: Partial<GenerationRecord> = {}): Partial<GenerationRecord> {
  return {
    status: 'succeeded',
    stage: ENDED,
    progress: { done: 1, failed: 0, total: 1 },
    endedAt: '2026-03-01T12:01:00.000Z',
    ...overrides,
  };
}

const thumbnailed = (id: string) => ({
  index: 0,
  key: `generations/${id}/0.png`,
  bytes: 70_000,
  sha256: 'sha-0',
  contentType: 'image/png',
  seed: 42,
  thumbnail: {
    key: `generations/${id}/thumbnails/0.webp`,
    bytes: 6000,
    contentType: 'image/webp',
    width: 256,
    height: 256,
  },
});

const minute = (i: number) => new Date(Date.parse('2026-03-01T10:00:00.000Z') + i * 60_000).toISOString();

/**
 * A batch of `total` lines, `rejected` of them refused; `lines` are the generations of its first
 * lines (line 1 first) as the index holds them, each with a running execution unless it ended.
 */
async function seedBatch(
  world: World,
  id: string,
  batch: Partial<Omit<NewBatch, 'id'>> & { lines?: Partial<GenerationRecord>[]; source?: BatchSource } = {},
) {
  const { lines = [], ...rest } = batch;
  await world.batches.create({
    id,
    createdAt: minute(0),
    source: 'api',
    priority: 'batch',
    total: lines.length,
    rejected: 0,
    fingerprint: `fingerprint-${id}`,
    ...rest,
  });
  lines.forEach((overrides, i) => {
    const lineId = batchLineId(id, i + 1);
    if ((overrides.stage ?? 0) < ENDED) world.executions.seed({ name: lineId, input: request() });
    world.index.seed(record(lineId, { createdAt: minute(1), ...overrides }));
  });
}

async function textOf(app: Hono, path: string) {
  const response = await app.request(path);
  expect(response.status, path).toBe(200);
  return response.text();
}

/** The text a page shows: tags and attribute values dropped. */
const shownText = (html: string) => html.replaceAll(/<[^>]*>/g, ' ').replaceAll(/\s+/g, ' ');

describe('the batches page', () => {
  it('lists batches newest first, each with its progress, counts, status and source', async () => {
    // Prepare
    const world = setup();
    await seedBatch(world, 'batch-old', {
      createdAt: minute(1),
      source: 'request-file',
      file: { bucket: BUCKET, key: 'requests/nightly.jsonl', version: 'v1' },
      lines: [succeeded(), succeeded()],
    });
    await world.batches.claimCompletion('batch-old', 'finisher', minute(2), minute(0));
    await world.batches.complete('batch-old', 'finisher', {
      status: 'completed',
      at: minute(3),
      resultsKey: 'batches/batch-old/results.jsonl',
      counts: {
        total: 2,
        rejected: 0,
        waiting: 0,
        running: 0,
        succeeded: 2,
        partial: 0,
        failed: 0,
        canceled: 0,
      },
    });
    await seedBatch(world, 'batch-new', {
      createdAt: minute(2),
      total: 5,
      rejected: 1,
      lines: [succeeded(), { status: 'running', stage: 3 }, { status: 'failed', stage: ENDED }],
    });

    // Act
    const page = await textOf(world.app, '/console/batches');

    // Assess: 5 lines, 1 running and 1 not started yet: 3 done (the rejected one too).
    expect(page.indexOf('href="/console/batches/batch-new"')).toBeGreaterThan(0);
    expect(page.indexOf('href="/console/batches/batch-new"')).toBeLessThan(
      page.indexOf('href="/console/batches/batch-old"'),
    );
    expect(page).toContain('<progress max="5" value="3" aria-label="Lines done">');
    expect(page).toContain('In progress: 3 of 5 lines done');
    expect(page).toContain('1 succeeded · 1 failed · 1 rejected · 1 running · 1 waiting');
    expect(page).toContain('<span class="badge in_progress">in progress</span>');
    expect(page).toContain('<progress max="2" value="2" aria-label="Lines done">');
    expect(page).toContain('<span class="badge completed">completed</span>');
    expect(page).toContain('from <span>request file <code>requests/nightly.jsonl</code></span>');
    expect(page).toContain('from <span>API</span>');
    expect(page).toContain('Ended <time datetime="2026-03-01T10:03:00.000Z">');
  });

  it('says when a batch should end as relative text, the same moment the API gives', async () => {
    // Prepare
    const world = setup({ admission: true });
    await seedBatch(world, 'batch-eta', { total: 6, lines: [{ status: 'running', stage: 3 }] });
    const view = (await (await world.app.request('/v1/batches/batch-eta')).json()) as BatchView;
    const at = view.estimatedCompletionAt ?? '';

    // Act
    const list = await textOf(world.app, '/console/batches');
    const batch = await textOf(world.app, '/console/batches/batch-eta');

    // Assess
    const phrase = relativeFromNow(at, NOW) ?? '';
    expect(phrase).toMatch(/^in about \d+ min$/);
    for (const page of [list, batch]) {
      expect(page).toContain(`Expected to end <time datetime="${at}">${phrase}</time>`);
      expect(shownText(page)).not.toContain(at.slice(0, 16));
    }
  });

  it('follows a batch in progress live, row by row, and leaves an ended one alone', async () => {
    // Prepare
    const world = setup();
    await seedBatch(world, 'batch-busy', { createdAt: minute(2), lines: [{ status: 'running', stage: 3 }] });
    await seedBatch(world, 'batch-done', { createdAt: minute(1), lines: [succeeded()] });
    await world.batches.claimCompletion('batch-done', 'finisher', minute(2), minute(0));
    await world.batches.complete('batch-done', 'finisher', {
      status: 'completed',
      at: minute(3),
      resultsKey: 'batches/batch-done/results.jsonl',
      counts: {
        total: 1,
        rejected: 0,
        waiting: 0,
        running: 0,
        succeeded: 1,
        partial: 0,
        failed: 0,
        canceled: 0,
      },
    });

    // Act
    const page = await textOf(world.app, '/console/batches');
    const row = await textOf(world.app, '/console/batches/batch-busy/row');

    // Assess
    expect(page).toContain('data-live-src="/console/batches/batch-busy/row"');
    expect(page).not.toContain('data-live-src="/console/batches/batch-done/row"');
    expect(row).toMatch(
      /^<li class="batch" data-live-status="in_progress" data-live-src="\/console\/batches\/batch-busy\/row">/,
    );
  });

  it('pages with the API cursor: the older page holds the rest and links back to the newest', async () => {
    // Prepare
    const world = setup();
    const total = BATCHES_PAGE_SIZE + 2;
    for (let i = 0; i < total; i++) {
      await seedBatch(world, `batch-${String(i).padStart(2, '0')}`, { createdAt: minute(i), total: 1 });
    }

    // Act
    const first = await textOf(world.app, '/console/batches');
    const older = /rel="next" href="([^"]+)"/.exec(first)?.[1]?.replaceAll('&amp;', '&') ?? '/missing';
    const second = await textOf(world.app, older);

    // Assess
    const idsOf = (page: string) =>
      [...page.matchAll(/href="\/console\/batches\/(batch-\d+)"/g)].map((m) => m[1]);
    expect(idsOf(first)).toHaveLength(BATCHES_PAGE_SIZE);
    expect(idsOf(first)[0]).toBe(`batch-${total - 1}`);
    expect(idsOf(second)).toEqual(['batch-01', 'batch-00']);
    expect(second).not.toContain('rel="next"');
    expect(second).toContain('<a href="/console/batches">Newest</a>');
  });

  it('answers a cursor it did not issue, or a query it does not know, with a 400 page', async () => {
    // Prepare
    const { app } = setup();

    // Act
    const forged = await app.request('/console/batches?cursor=forged.cursor');
    const unknown = await app.request('/console/batches?status=failed');

    // Assess
    expect(forged.status).toBe(400);
    expect(await forged.text()).toContain('is not a cursor this API issued');
    expect(unknown.status).toBe(400);
  });

  it('is linked from every page’s navigation', async () => {
    // Prepare
    const world = setup();
    await seedBatch(world, 'batch-1', { total: 1 });

    // Act
    const pages = await Promise.all(
      ['/console/', '/console/new', '/console/batches', '/console/batches/batch-1'].map((path) =>
        textOf(world.app, path),
      ),
    );

    // Assess
    for (const page of pages)
      expect(page).toMatch(/<nav aria-label="Console">.*<a href="\/console\/batches">Batches<\/a>/s);
  });

  it('says so on a server that keeps no batches', async () => {
    // Prepare
    const { app } = setup({ withBatches: false });

    // Act
    const page = await textOf(app, '/console/batches');

    // Assess
    expect(page).toContain('This server keeps no batches.');
  });
});

describe('a batch page', () => {
  it('shows its progress, counts and its generations as gallery cards, followed as one section', async () => {
    // Prepare
    const world = setup();
    await seedBatch(world, 'batch-1', {
      total: 4,
      metadata: { project: 'lighthouses' },
      lines: [
        succeeded({
          images: [thumbnailed('batch-1-1')],
          request: request({ prompt: 'Eagle over white clouds' }),
        }),
        { status: 'running', stage: 3, progress: { done: 0, failed: 0, total: 1 } },
      ],
    });

    // Act
    const page = await textOf(world.app, '/console/batches/batch-1');

    // Assess
    expect(page).toContain('In progress: 1 of 4 lines done');
    expect(page).toContain('<progress max="4" value="1" aria-label="Lines done">');
    expect(page).toContain('1 succeeded · 1 running · 2 waiting');
    expect(page).toContain('<dt>project</dt><dd>lighthouses</dd>');
    expect(page).toContain('src="https://signed.example/generations/batch-1-1/thumbnails/0.webp"');
    expect(page).toContain('alt="Eagle over white clouds"');
    expect(page).toContain('class="open" href="/console/generations/batch-1-2"');
    expect(page).toMatch(
      /<section id="live"[^>]*data-live-status="in_progress"[^>]*data-live-src="\/console\/batches\/batch-1\/live\?seen=[\w-]+"/,
    );
    // The section follows its cards: none is followed on its own.
    expect(page).not.toContain('/card"');
    expect(page).toContain(
      '<p id="live-announcer" class="visually-hidden" role="status" aria-live="polite">',
    );
    expect(page).not.toContain('Download results');
  });

  it('lists the failed and canceled lines with their reasons, and the rejected lines from rejected.json', async () => {
    // Prepare
    const world = setup();
    await seedBatch(world, 'batch-1', {
      total: 4,
      rejected: 1,
      lines: [
        {
          status: 'failed',
          stage: ENDED,
          error: { type: 'DataInspectionFailed', message: 'The prompt was refused' },
        },
        succeeded(),
        {
          status: 'canceled',
          stage: ENDED,
          error: { type: 'TaskCanceled', message: 'Canceled through the API' },
        },
      ],
    });
    await world.objects.putJson(
      { bucket: BUCKET, key: rejectedKeyOf('batch-1') },
      { lines: [{ line: 4, error: { type: 'invalid_request', message: 'line 4: n: must be at most 4' } }] },
    );

    // Act
    const page = await textOf(world.app, '/console/batches/batch-1');

    // Assess
    expect(page).toContain(
      '<a href="/console/generations/batch-1-1">Line 1</a>: <span class="badge failed">failed</span> <strong>DataInspectionFailed</strong>: The prompt was refused',
    );
    expect(page).toContain(
      '<a href="/console/generations/batch-1-3">Line 3</a>: <span class="badge canceled">canceled</span> <strong>TaskCanceled</strong>: Canceled through the API',
    );
    expect(page).not.toContain('>Line 2<');
    expect(page).toContain('Line 4: <strong>invalid_request</strong>: n: must be at most 4');
  });

  it('says when its rejected lines cannot be read, and still shows the page', async () => {
    // Prepare
    const world = setup();
    await seedBatch(world, 'batch-1', { total: 2, rejected: 1, lines: [succeeded()] });

    // Act
    const page = await textOf(world.app, '/console/batches/batch-1');

    // Assess
    expect(page).toContain('1 line was rejected, but why could not be read; the results list them.');
  });

  it('answers an unknown batch, or a name that is no batch id, with a 404 page', async () => {
    // Prepare
    const { app } = setup();

    // Act
    const unknown = await app.request('/console/batches/batch-nope');
    const notAnId = await app.request('/console/batches/gen-1');
    const live = await app.request('/console/batches/batch-nope/live');

    // Assess
    for (const response of [unknown, notAnId, live]) {
      expect(response.status).toBe(404);
      expect(await response.text()).toContain('There is no such batch.');
    }
  });

  it('cancels the batch with its button: waiting and running lines are canceled, and the page says cancelled', async () => {
    // Prepare
    const world = setup();
    await seedBatch(world, 'batch-1', {
      total: 3,
      lines: [{ status: 'running', stage: 3 }, { status: 'queued', stage: 1 }, succeeded()],
    });
    const before = await textOf(world.app, '/console/batches/batch-1');

    // Act
    const response = await world.app.request('/console/batches/batch-1/cancel', {
      method: 'POST',
      headers: sameOrigin,
      body: '',
    });
    const after = await textOf(world.app, '/console/batches/batch-1');

    // Assess
    expect(before).toContain('<form method="post" action="/console/batches/batch-1/cancel">');
    expect(response.status).toBe(303);
    expect(response.headers.get('location')).toBe('/console/batches/batch-1');
    expect(world.executions.calls.stop.map((call) => call.name).sort()).toEqual(['batch-1-1', 'batch-1-2']);
    expect((await world.index.get('batch-1-1'))?.status).toBe('canceled');
    expect((await world.index.get('batch-1-3'))?.status).toBe('succeeded');
    expect((await world.batches.get('batch-1'))?.status).toBe('cancelling');
    expect(after).toContain('<span class="badge cancelling">cancelling</span>');
    expect(after).not.toContain('Cancel batch');
  });

  it('refuses a cancel from another site (CSRF), and an unknown batch’s cancel is a 404', async () => {
    // Prepare
    const world = setup();
    await seedBatch(world, 'batch-1', { total: 1, lines: [{ status: 'running', stage: 3 }] });

    // Act
    const crossSite = await world.app.request('/console/batches/batch-1/cancel', {
      method: 'POST',
      headers: { origin: 'https://evil.example', 'content-type': 'application/x-www-form-urlencoded' },
      body: '',
    });
    const unknown = await world.app.request('/console/batches/batch-nope/cancel', {
      method: 'POST',
      headers: sameOrigin,
      body: '',
    });

    // Assess
    expect(crossSite.status).toBe(403);
    expect(world.executions.calls.stop).toEqual([]);
    expect((await world.batches.get('batch-1'))?.status).toBe('in_progress');
    expect(unknown.status).toBe(404);
  });

  it('needs a session with a token: the page sends to sign-in, a cancel without one is refused', async () => {
    // Prepare
    const world = setup({ apiToken: 'console-test-token-0123456789' });
    await seedBatch(world, 'batch-1', { total: 1, lines: [{ status: 'running', stage: 3 }] });

    // Act
    const page = await world.app.request('/console/batches/batch-1');
    const cancel = await world.app.request('/console/batches/batch-1/cancel', {
      method: 'POST',
      headers: sameOrigin,
      body: '',
    });

    // Assess
    expect(page.status).toBe(303);
    expect(page.headers.get('location')).toBe('/console/sign-in?next=%2Fconsole%2Fbatches%2Fbatch-1');
    expect(cancel.status).toBe(401);
    expect(world.executions.calls.stop).toEqual([]);
  });

  it('offers its results, presigned, once it ended, and stops following', async () => {
    // Prepare
    const world = setup();
    await seedBatch(world, 'batch-1', { total: 1, lines: [succeeded()] });
    await world.batches.claimCompletion('batch-1', 'finisher', minute(2), minute(0));
    await world.batches.complete('batch-1', 'finisher', {
      status: 'completed',
      at: minute(3),
      resultsKey: 'batches/batch-1/results.jsonl',
      counts: {
        total: 1,
        rejected: 0,
        waiting: 0,
        running: 0,
        succeeded: 1,
        partial: 0,
        failed: 0,
        canceled: 0,
      },
    });

    // Act
    const page = await textOf(world.app, '/console/batches/batch-1');

    // Assess
    expect(page).toContain(
      '<a class="button primary" href="https://signed.example/batches/batch-1/results.jsonl" download="batch-1-results.jsonl">Download results</a>',
    );
    expect(page).toContain('data-live-status="completed"');
    expect(page).not.toContain('data-live-src');
    expect(page).not.toContain('Cancel batch');
  });

  it('serves a live section that answers 204 while nothing changed, and a fresh copy once something did', async () => {
    // Prepare
    const world = setup();
    await seedBatch(world, 'batch-1', { total: 2, lines: [{ status: 'running', stage: 3 }] });
    const page = await textOf(world.app, '/console/batches/batch-1');
    const live = (/data-live-src="([^"]+)"/.exec(page)?.[1] ?? '').replaceAll('&amp;', '&');

    // Act
    const unchanged = await world.app.request(live);
    world.index.seed(record('batch-1-1', { createdAt: minute(1), ...succeeded() }));
    const changed = await world.app.request(live);
    const fresh = await changed.text();

    // Assess
    expect(live).toMatch(/^\/console\/batches\/batch-1\/live\?seen=/);
    expect(unchanged.status).toBe(204);
    expect(await unchanged.text()).toBe('');
    expect(changed.status).toBe(200);
    expect(fresh).toMatch(/^<section id="live"/);
    expect(fresh).toContain('data-live-announce="In progress: 1 of 2 lines done"');
    expect(fresh).toContain('<span class="badge succeeded">succeeded</span>');
    expect(/data-live-src="([^"]+)"/.exec(fresh)?.[1]).not.toBe(/data-live-src="([^"]+)"/.exec(page)?.[1]);
  });

  it('pages its generations in line order, and the live section keeps to its page', async () => {
    // Prepare
    const world = setup();
    const lines = Array.from({ length: GALLERY_PAGE_SIZE + 2 }, () => succeeded());
    await seedBatch(world, 'batch-1', { lines });

    // Act
    const first = await textOf(world.app, '/console/batches/batch-1');
    const next = /rel="next" href="([^"]+)"/.exec(first)?.[1]?.replaceAll('&amp;', '&') ?? '/missing';
    const second = await textOf(world.app, next);
    const forged = await world.app.request('/console/batches/batch-1?cursor=forged.cursor');

    // Assess
    const linesOf = (page: string) =>
      [...page.matchAll(/class="open" href="\/console\/generations\/batch-1-(\d+)"/g)].map((m) =>
        Number(m[1]),
      );
    expect(linesOf(first)).toEqual(Array.from({ length: GALLERY_PAGE_SIZE }, (_, i) => i + 1));
    expect(linesOf(second)).toEqual([GALLERY_PAGE_SIZE + 1, GALLERY_PAGE_SIZE + 2]);
    expect(second).toContain('<a href="/console/batches/batch-1">First lines</a>');
    expect(second).not.toContain('rel="next"');
    expect(second).toMatch(/data-live-src="\/console\/batches\/batch-1\/live\?cursor=[\w.-]+&amp;seen=/);
    expect(forged.status).toBe(400);
  });

  it('escapes its metadata, file name and reasons', async () => {
    // Prepare
    const world = setup();
    const evil = '<script>alert(1)</script>';
    await seedBatch(world, 'file-evil', {
      total: 2,
      rejected: 1,
      source: 'request-file',
      metadata: { [`name${evil}`]: `"quoted" & ${evil}` },
      file: { bucket: BUCKET, key: `requests/<img src=x onerror=alert(1)>.jsonl`, version: 'v1' },
      lines: [{ status: 'failed', stage: ENDED, error: { type: 'Boom', message: `failed ${evil}` } }],
    });
    await world.objects.putJson(
      { bucket: BUCKET, key: rejectedKeyOf('file-evil') },
      { lines: [{ line: 2, error: { type: 'invalid_request', message: `line 2: prompt: ${evil}` } }] },
    );

    // Act
    const pages = [
      await textOf(world.app, '/console/batches/file-evil'),
      await textOf(world.app, '/console/batches'),
    ];

    // Assess
    for (const page of pages) {
      expect(page).not.toContain(evil);
      expect(page).not.toContain('<img src=x');
      expect(page).toContain('<code>requests/&lt;img src=x onerror=alert(1)&gt;.jsonl</code>');
    }
    const [batchPage] = pages;
    expect(batchPage).toContain('<dt>name&lt;script&gt;alert(1)&lt;/script&gt;</dt>');
    expect(batchPage).toContain('<dd>&quot;quoted&quot; &amp; &lt;script&gt;alert(1)&lt;/script&gt;</dd>');
    expect(batchPage).toContain('<strong>Boom</strong>: failed &lt;script&gt;alert(1)&lt;/script&gt;');
    expect(batchPage).toContain('prompt: &lt;script&gt;alert(1)&lt;/script&gt;');
  });
});
