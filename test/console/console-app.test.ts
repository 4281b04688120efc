import type { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { type ApiOptions, createApiApp } from '../../functions/api/app.js';
import { GALLERY_PAGE_SIZE } from '../../functions/api/console/app.js';
import { LiveSection } from '../../functions/api/console/views.js';
import type { GenerationView } from '../../functions/api/schemas.js';
import type { Clock } from '../../functions/shared/clock.js';
import type { GenerationRecord } from '../../functions/shared/generation-index.js';
import { generationRequestSchema } from '../../functions/shared/generation-request.js';
import { silentLogger } from '../../functions/shared/logger.js';
import { FakeExecutionService } from '../api/fake-executions.js';
import { fakePresign } from '../api/fixtures.js';
import { MemoryGenerationIndex } from '../fakes/memory-index.js';

const NOW = Date.parse('2026-03-01T12:34:56.789Z');
const clock: Clock = { now: () => NOW };
const ORIGIN = 'http://localhost';
/** What a browser sends with a same-origin form. */
const sameOrigin = { origin: ORIGIN, 'content-type': 'application/x-www-form-urlencoded' };

function setup(options: ApiOptions = {}) {
  const index = new MemoryGenerationIndex();
  const executions = new FakeExecutionService(clock, index);
  const app: Hono = createApiApp(
    { executions, index, presign: fakePresign, clock, logger: silentLogger },
    { console: true, ...options },
  );
  return { app, index, executions };
}

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

const image = (id: string, index: number) => ({
  index,
  key: `generations/${id}/${index}.png`,
  bytes: 70_000 + index,
  sha256: `sha-${index}`,
  contentType: 'image/png',
  seed: 42 + index,
});

function succeededRecord(id: string, overrides: Partial<GenerationRecord> = {}): GenerationRecord {
  return record(id, {
    status: 'succeeded',
    stage: 1_000_000_000,
    request: request({ n: 2, prompt: 'Eagle over white clouds', negative_prompt: 'blurry' }),
    progress: { done: 2, failed: 0, total: 2 },
    dashscope: {
      taskId: 'task-77',
      submitTime: '2026-03-01T12:00:01.000Z',
      scheduledTime: '2026-03-01T12:00:02.000Z',
      endTime: '2026-03-01T12:00:20.000Z',
    },
    images: [image(id, 0), image(id, 1)],
    manifestKey: `generations/${id}/manifest.json`,
    endedAt: '2026-03-01T12:00:30.000Z',
    ...overrides,
  });
}

const form = (fields: Record<string, string | string[]>) => {
  const body = new URLSearchParams();
  for (const [name, value] of Object.entries(fields)) {
    for (const one of Array.isArray(value) ? value : [value]) body.append(name, one);
  }
  return body.toString();
};

const minute = (i: number) => new Date(Date.parse('2026-03-01T10:00:00.000Z') + i * 60_000).toISOString();

describe('the gallery', () => {
  it('lists generations newest first, with the first image as thumbnail and a status badge', async () => {
    // Prepare
    const { app, index } = setup();
    index.seed(succeededRecord('gen-old', { createdAt: minute(1) }));
    index.seed(record('gen-new', { createdAt: minute(2), status: 'running', stage: 3 }));

    // Act
    const response = await app.request('/console/');
    const page = await response.text();

    // Assess
    expect(response.status).toBe(200);
    expect(page.indexOf('/console/generations/gen-new')).toBeLessThan(
      page.indexOf('/console/generations/gen-old'),
    );
    expect(page).toContain('src="https://signed.example/generations/gen-old/0.png"');
    expect(page).toContain('alt="Eagle over white clouds"');
    expect(page).toContain('<span class="badge running">running</span>');
    expect(page).toContain('<span class="badge succeeded">succeeded</span>');
  });

  it('shows the first image’s thumbnail, with its own width and height, when it has one', async () => {
    // Prepare
    const { app, index } = setup();
    const thumbnail = {
      key: 'generations/gen-1/thumbnails/0.webp',
      bytes: 6000,
      contentType: 'image/webp',
      width: 256,
      height: 192,
    };
    index.seed(succeededRecord('gen-1', { images: [{ ...image('gen-1', 0), thumbnail }] }));

    // Act
    const page = await (await app.request('/console/')).text();

    // Assess
    expect(page).toContain('src="https://signed.example/generations/gen-1/thumbnails/0.webp"');
    expect(page).toContain('width="256" height="192"');
    expect(page).not.toContain('src="https://signed.example/generations/gen-1/0.png"');
  });

  it('follows a running card live and leaves an ended one alone', async () => {
    // Prepare
    const { app, index } = setup();
    index.seed(succeededRecord('gen-done', { createdAt: minute(1) }));
    index.seed(record('gen-busy', { createdAt: minute(2), status: 'running', stage: 3 }));

    // Act
    const page = await (await app.request('/console/')).text();

    // Assess
    expect(page).toContain('data-live-src="/console/generations/gen-busy/card"');
    expect(page).not.toContain('data-live-src="/console/generations/gen-done/card"');
  });

  it('shows only the status the filter asks for', async () => {
    // Prepare
    const { app, index } = setup();
    index.seed(succeededRecord('gen-ok', { createdAt: minute(1) }));
    index.seed(record('gen-bad', { createdAt: minute(2), status: 'failed', stage: 1_000_000_000 }));

    // Act
    const page = await (await app.request('/console/?status=failed')).text();

    // Assess
    expect(page).toContain('/console/generations/gen-bad');
    expect(page).not.toContain('/console/generations/gen-ok');
    expect(page).toContain('<option value="failed" selected="">failed</option>');
  });

  it('pages with the API cursor: the older page holds the rest and links back to the newest', async () => {
    // Prepare
    const { app, index } = setup();
    const total = GALLERY_PAGE_SIZE + 3;
    for (let i = 0; i < total; i++)
      index.seed(record(`gen-${String(i).padStart(2, '0')}`, { createdAt: minute(i) }));

    // Act
    const first = await (await app.request('/console/')).text();
    const older = /rel="next" href="([^"]+)"/.exec(first)?.[1]?.replaceAll('&amp;', '&');
    const second = await (await app.request(older ?? '/missing')).text();

    // Assess
    const idsOf = (page: string) =>
      [...page.matchAll(/class="open" href="\/console\/generations\/(gen-\d+)"/g)].map((m) => m[1]);
    expect(idsOf(first)).toHaveLength(GALLERY_PAGE_SIZE);
    expect(idsOf(first)[0]).toBe(`gen-${total - 1}`);
    expect(idsOf(second)).toEqual(['gen-02', 'gen-01', 'gen-00']);
    expect(second).not.toContain('rel="next"');
    expect(second).toContain('>Newest</a>');
  });

  it('answers a cursor it did not issue with a 400 page', async () => {
    // Prepare
    const { app } = setup();

    // Act
    const response = await app.request('/console/?cursor=forged.cursor');

    // Assess
    expect(response.status).toBe(400);
    expect(await response.text()).toContain('is not a cursor this API issued');
  });
});

describe('a generation page', () => {
  it('shows every image full size with alt text from the prompt, its seed and a download link', async () => {
    // Prepare
    const { app, index } = setup();
    index.seed(succeededRecord('gen-1'));

    // Act
    const page = await (await app.request('/console/generations/gen-1')).text();

    // Assess
    for (const i of [0, 1]) {
      expect(page).toContain(
        `src="https://signed.example/generations/gen-1/${i}.png" alt="Eagle over white clouds (${i + 1} of 2)" width="1024" height="1024"`,
      );
      expect(page).toContain(`seed <code>${42 + i}</code>`);
      expect(page).toContain(
        `<a href="https://signed.example/generations/gen-1/${i}.png" download="gen-1-${i}.png">`,
      );
    }
  });

  it('shows the prompt, negative prompt, parameters, task id and timings', async () => {
    // Prepare
    const { app, index } = setup();
    index.seed(succeededRecord('gen-1'));

    // Act
    const page = await (await app.request('/console/generations/gen-1')).text();

    // Assess
    for (const text of [
      'Eagle over white clouds',
      'blurry',
      'stable-diffusion-3.5-large',
      '1024 × 1024',
      '<code>task-77</code>',
      '(ran 18.0 s)',
      '(30.0 s in all)',
    ]) {
      expect(page).toContain(text);
    }
  });

  it('shows a failure with its reason and no cancel button', async () => {
    // Prepare
    const { app, index } = setup();
    index.seed(
      record('gen-1', {
        status: 'failed',
        stage: 1_000_000_000,
        error: {
          type: 'DataInspectionFailed',
          message: 'The prompt was refused',
          upstreamCode: 'DataInspectionFailed',
        },
        failedImages: [{ index: 1, type: 'ImageDownloadError', message: 'result host said 403' }],
      }),
    );

    // Act
    const page = await (await app.request('/console/generations/gen-1')).text();

    // Assess
    expect(page).toContain('<strong>DataInspectionFailed</strong>: The prompt was refused');
    expect(page).toContain('Image 2: <strong>ImageDownloadError</strong>: result host said 403');
    expect(page).not.toContain('Cancel generation');
  });

  it('offers a cancel button while running, and cancelling stops the execution', async () => {
    // Prepare
    const { app, index, executions } = setup();
    executions.seed({ name: 'gen-1', input: request() });
    index.seed(record('gen-1', { status: 'running', stage: 2 }));
    const page = await (await app.request('/console/generations/gen-1')).text();

    // Act
    const response = await app.request('/console/generations/gen-1/cancel', {
      method: 'POST',
      headers: sameOrigin,
      body: '',
    });

    // Assess
    expect(page).toContain('action="/console/generations/gen-1/cancel"');
    expect(response.status).toBe(303);
    expect(response.headers.get('location')).toBe('/console/generations/gen-1');
    expect(executions.calls.stop.map((call) => call.name)).toEqual(['gen-1']);
    expect((await index.get('gen-1'))?.status).toBe('canceled');
  });

  it('renders the admission queue place when the view has one, its expected start relative to now', async () => {
    // Prepare
    const startAt = new Date(NOW + 18 * 60_000).toISOString();
    const view: GenerationView & { queue: unknown } = {
      id: 'gen-1',
      status: 'queued',
      createdAt: '2026-03-01T12:00:00.000Z',
      progress: { done: 0, failed: 0, total: 1 },
      dashscope: {},
      links: { self: '/v1/generations/gen-1', cancel: '/v1/generations/gen-1/cancel' },
      queue: { lane: 'interactive', position: 3, estimatedStartAt: startAt },
    };

    // Act
    const section = String(await LiveSection({ view, now: NOW }));

    // Assess
    expect(section).toContain(
      'Queued: position 3 in the interactive lane, expected to start in about 18 min',
    );
    expect(section).toContain(
      `<dt>Expected start</dt><dd><time datetime="${startAt}">in about 18 min</time>`,
    );
    // The time itself is only in the machine-readable attributes, never in the text.
    expect(section.replaceAll(/"[^"]*"/g, '')).not.toContain(startAt.slice(0, 16));
  });

  it('serves a live fragment that keeps following while running and stops once ended', async () => {
    // Prepare
    const { app, index } = setup();
    index.seed(
      record('gen-run', { status: 'running', stage: 2, progress: { done: 1, failed: 0, total: 2 } }),
    );
    index.seed(succeededRecord('gen-end'));

    // Act
    const running = await (await app.request('/console/generations/gen-run/live')).text();
    const ended = await (await app.request('/console/generations/gen-end/live')).text();

    // Assess
    expect(running).toMatch(/^<section id="live"/);
    expect(running).toContain('data-live-src="/console/generations/gen-run/live"');
    expect(running).toContain('data-live-announce="Running: 1 of 2 images"');
    expect(ended).not.toContain('data-live-src');
    expect(ended).toContain('data-live-status="succeeded"');
  });

  it('answers an unknown generation with a 404 page', async () => {
    // Prepare
    const { app } = setup();

    // Act
    const response = await app.request('/console/generations/gen-nope');

    // Assess
    expect(response.status).toBe(404);
    expect(await response.text()).toContain('There is no such generation.');
  });
});

describe('the create form', () => {
  it('has a labelled control for every request parameter', async () => {
    // Prepare
    const { app } = setup();

    // Act
    const page = await (await app.request('/console/new')).text();

    // Assess
    const fields = Object.keys(generationRequestSchema.def.shape).filter(
      (field) => field !== 'webhook_events',
    );
    for (const field of fields) {
      expect(page).toContain(`<label for="f-${field}">`);
      expect(page).toContain(`id="f-${field}" name="${field}"`);
    }
    expect(page).toContain('name="webhook_events" value="generation.succeeded"');
  });

  it('creates the generation it describes and redirects to its page', async () => {
    // Prepare
    const { app, executions } = setup();
    const body = form({
      prompt: 'A red fox in snow',
      negative_prompt: '',
      model: 'stable-diffusion-3.5-large-turbo',
      size: '768*512',
      n: '2',
      steps: '30',
      cfg: '4',
      seed: '7',
      shift: '3',
      init_image: '',
      webhook_url: '',
      priority: 'batch',
      idempotency_key: 'console-key-1',
    });

    // Act
    const response = await app.request('/console/generations', { method: 'POST', headers: sameOrigin, body });

    // Assess
    expect(response.status).toBe(303);
    const [started] = executions.calls.start;
    expect(response.headers.get('location')).toBe(`/console/generations/${started?.name}`);
    expect(started?.input).toEqual(
      request({
        prompt: 'A red fox in snow',
        model: 'stable-diffusion-3.5-large-turbo',
        size: '768*512',
        n: 2,
        steps: 30,
        cfg: 4,
        seed: 7,
        shift: 3,
        priority: 'batch',
      }),
    );
  });

  it('records the generations it creates as made by the console', async () => {
    // Prepare
    const { app, index } = setup();
    const body = form({ prompt: 'A red fox in snow', idempotency_key: 'console-key-source' });

    // Act
    const response = await app.request('/console/generations', { method: 'POST', headers: sameOrigin, body });

    // Assess
    const id = response.headers.get('location')?.split('/').at(-1) ?? '';
    expect((await index.get(id))?.source).toBe('console');
  });

  it('starts one generation for a form sent twice', async () => {
    // Prepare
    const { app, executions } = setup();
    const body = form({ prompt: 'A red fox in snow', idempotency_key: 'console-key-2' });

    // Act
    const first = await app.request('/console/generations', { method: 'POST', headers: sameOrigin, body });
    const second = await app.request('/console/generations', { method: 'POST', headers: sameOrigin, body });

    // Assess
    expect(second.headers.get('location')).toBe(first.headers.get('location'));
    expect(executions.calls.start).toHaveLength(1);
  });

  it('shows each refused field its reason beside it, keeps the values and starts nothing', async () => {
    // Prepare
    const { app, executions } = setup();
    const body = form({ prompt: 'A red fox', n: '9', cfg: 'lots', idempotency_key: 'console-key-3' });

    // Act
    const response = await app.request('/console/generations', { method: 'POST', headers: sameOrigin, body });
    const page = await response.text();

    // Assess
    expect(response.status).toBe(400);
    expect(page).toContain('aria-describedby="f-n-error f-n-hint" aria-invalid="true"');
    expect(page).toContain('<p class="error" id="f-n-error">Images (n) must be at most 4</p>');
    expect(page).toContain('<p class="error" id="f-cfg-error">CFG scale must be a number</p>');
    expect(page).toContain('value="9"');
    expect(page).toContain('A red fox</textarea>');
    expect(executions.calls.start).toEqual([]);
  });

  it('refuses a webhook URL the notifier would refuse, on its field', async () => {
    // Prepare
    const { app } = setup();
    const body = form({ prompt: 'A red fox', webhook_url: 'http://127.0.0.1/hook' });

    // Act
    const page = await (
      await app.request('/console/generations', { method: 'POST', headers: sameOrigin, body })
    ).text();

    // Assess
    expect(page).toMatch(
      /<p class="error" id="f-webhook_url-error">Webhook URL is refused by this deployment/,
    );
  });

  it('fills the form with a generation’s settings for "use these settings"', async () => {
    // Prepare
    const { app, index } = setup();
    index.seed(
      succeededRecord('gen-1', {
        request: request({ prompt: 'Eagle', negative_prompt: 'blurry', size: '512*768', n: 3, seed: 9 }),
      }),
    );

    // Act
    const generation = await (await app.request('/console/generations/gen-1')).text();
    const page = await (await app.request('/console/new?from=gen-1')).text();

    // Assess
    expect(generation).toContain('href="/console/new?from=gen-1"');
    expect(page).toContain('Eagle</textarea>');
    expect(page).toContain('blurry</textarea>');
    expect(page).toContain('<option value="512*768" selected="">');
    expect(page).toMatch(/id="f-n" name="n"[^>]*value="3"|value="3"[^>]*id="f-n"/);
    expect(page).toMatch(/value="9"[^>]*id="f-seed"/);
  });
});

describe('console security', () => {
  it('refuses a form POST from another site (CSRF)', async () => {
    // Prepare
    const { app, executions } = setup();

    // Act
    const response = await app.request('/console/generations', {
      method: 'POST',
      headers: { origin: 'https://evil.example', 'content-type': 'application/x-www-form-urlencoded' },
      body: form({ prompt: 'A red fox' }),
    });

    // Assess
    expect(response.status).toBe(403);
    expect(executions.calls.start).toEqual([]);
  });

  it('sends a CSP without inline script that lets images come only from the bucket origin', async () => {
    // Prepare
    const { app } = setup();

    // Act
    const response = await app.request('/console/');
    const page = await response.text();

    // Assess
    const csp = response.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).toContain("img-src 'self' https://signed.example");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(page.match(/<script[^>]*>/g)).toEqual(['<script src="/console/assets/console.js" defer="">']);
    expect(response.headers.get('cache-control')).toBe('no-store');
  });

  it('sends the server root and /console to the gallery', async () => {
    // Prepare
    const { app } = setup();

    // Act
    const root = await app.request('/');
    const bare = await app.request('/console');

    // Assess
    expect(root.headers.get('location')).toBe('/console/');
    expect(bare.headers.get('location')).toBe('/console/');
  });

  it('is not served when the app is built without it (Lambda)', async () => {
    // Prepare
    const { app } = setup({ console: false });

    // Act
    const response = await app.request('/console/');

    // Assess
    expect(response.status).toBe(404);
  });
});

describe('signing in with the API token', () => {
  const token = 'console-test-token-0123456789';

  async function signIn(app: Hono, given: string) {
    return app.request('/console/sign-in', {
      method: 'POST',
      headers: sameOrigin,
      body: form({ token: given, next: '/console/generations/gen-1' }),
    });
  }

  it('sends a browser without a session to the sign-in form', async () => {
    // Prepare
    const { app } = setup({ apiToken: token });

    // Act
    const response = await app.request('/console/?status=failed');

    // Assess
    expect(response.status).toBe(303);
    expect(response.headers.get('location')).toBe('/console/sign-in?next=%2Fconsole%2F%3Fstatus%3Dfailed');
  });

  it('refuses a wrong token on the form', async () => {
    // Prepare
    const { app } = setup({ apiToken: token });

    // Act
    const response = await signIn(app, 'wrong');

    // Assess
    expect(response.status).toBe(401);
    expect(response.headers.get('set-cookie')).toBeNull();
    expect(await response.text()).toContain('aria-invalid="true"');
  });

  it('answers the right token with an HttpOnly, SameSite=Strict cookie that does not hold the token', async () => {
    // Prepare
    const { app } = setup({ apiToken: token });

    // Act
    const response = await signIn(app, token);

    // Assess
    const cookie = response.headers.get('set-cookie') ?? '';
    expect(response.status).toBe(303);
    expect(response.headers.get('location')).toBe('/console/generations/gen-1');
    expect(cookie).toMatch(/^sd35_console=v1\./);
    expect(cookie).toContain('HttpOnly');
    expect(cookie).toContain('SameSite=Strict');
    expect(cookie).toContain('Path=/console');
    expect(cookie).not.toContain(token);
  });

  it('lets the session cookie in to the console, but not to the JSON API', async () => {
    // Prepare
    const { app } = setup({ apiToken: token });
    const cookie = ((await signIn(app, token)).headers.get('set-cookie') ?? '').split(';')[0] ?? '';

    // Act
    const consolePage = await app.request('/console/', { headers: { cookie } });
    const api = await app.request('/v1/generations', { headers: { cookie } });

    // Assess
    expect(consolePage.status).toBe(200);
    expect(api.status).toBe(401);
  });

  it('never redirects after sign-in to another site', async () => {
    // Prepare
    const { app } = setup({ apiToken: token });

    // Act
    const response = await app.request('/console/sign-in', {
      method: 'POST',
      headers: sameOrigin,
      body: form({ token, next: '//evil.example/console/' }),
    });

    // Assess
    expect(response.headers.get('location')).toBe('/console/');
  });
});

describe('the icon', () => {
  it('serves /favicon.ico, a 32 × 32 ICO cached for a year, without a session even with a token', async () => {
    // Prepare
    const { app } = setup({ apiToken: 'secret-token' });

    // Act
    const response = await app.request('/favicon.ico');

    // Assess
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('image/x-icon');
    expect(response.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    const bytes = Buffer.from(await response.arrayBuffer());
    expect([...bytes.subarray(0, 8)]).toEqual([0, 0, 1, 0, 1, 0, 32, 32]);
    expect(bytes.readUInt32LE(18) + bytes.readUInt32LE(14)).toBe(bytes.length);
  });

  it('is linked from every page as an SVG whose name changes with it, cached for a year', async () => {
    // Prepare
    const { app } = setup();
    const page = await (await app.request('/console/new')).text();
    const href = /<link rel="icon" type="image\/svg\+xml" href="([^"]+)"/.exec(page)?.[1] ?? '';

    // Act
    const response = await app.request(href);

    // Assess
    expect(href).toMatch(/^\/console\/assets\/favicon-[0-9a-f]{12}\.svg$/);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('image/svg+xml');
    expect(response.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(await response.text()).toMatch(/^<svg /);
  });

  it('is not served by an API without the console', async () => {
    const { app } = setup({ console: false });

    expect((await app.request('/favicon.ico')).status).toBe(404);
  });
});
