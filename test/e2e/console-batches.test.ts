import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchBrowser } from '../../local/browser.js';
import type { LocalApi } from '../../local/local-api.js';
import { startTestApi, type TestApi } from '../support/local-api.js';
import { waitFor } from '../support/wait-for.js';
import { watchedPage as watchPage } from '../support/watched-page.js';

/**
 * The batch pages in a real Chromium (the one `npm ci` brings), against the local server as
 * `npm start` runs it, with real waits: a batch sent to `POST /v1/batches` is followed on its
 * page without a reload until each of its generations has its image, then both pages are
 * measured at 1280 and 375 px.
 */
const token = 'test-token-for-console-batches';
let testApi: TestApi;
let api: LocalApi;
let browser: Browser;

beforeAll(async () => {
  // Real waits (no virtual clock): the generations run for seconds, as they do for a user.
  testApi = await startTestApi('console-batches-', { apiToken: token, virtualWaits: undefined });
  api = testApi.api;
  browser = await launchBrowser();
  // Synthesizing the stack, starting s3rver and unpacking Chromium take minutes on a busy machine.
}, 600_000);

afterAll(async () => {
  await browser?.close();
  await testApi?.close();
});

const watchedPage = () => watchPage(browser, { width: 1280, height: 900 });

interface Shown {
  readonly status: string | null;
  readonly line: string;
  readonly progress: { readonly value: number; readonly max: number } | null;
  /** Each card's status and its image's natural width (-1 while it loads, none: no image). */
  readonly cards: { readonly status: string; readonly width?: number }[];
}

/** What the batch page shows (an expression: the CSP forbids eval'd functions). */
const SHOWN = `(() => {
  const live = document.getElementById('live');
  const progress = live.querySelector('progress');
  return {
    status: live.getAttribute('data-live-status'),
    line: live.querySelector('.status-line span:not(.badge)').textContent,
    progress: progress ? { value: progress.value, max: progress.max } : null,
    cards: [...live.querySelectorAll('li.card')].map((card) => {
      const image = card.querySelector('img');
      return {
        status: card.querySelector('.badge').textContent,
        ...(image ? { width: image.complete ? image.naturalWidth : -1 } : {}),
      };
    }),
  };
})()`;

/** How far the page's content reaches past the viewport's width, px (0: nothing scrolls sideways). */
const OVERFLOW = `(() => {
  const root = document.documentElement;
  const wider = [...document.querySelectorAll('main *')].filter((e) => e.getBoundingClientRect().right > root.clientWidth + 1);
  return { by: root.scrollWidth - root.clientWidth, wider: wider.slice(0, 5).map((e) => e.tagName + '.' + e.className) };
})()`;

describe('the batch pages in a browser', () => {
  it('follow a batch made through the API to its end without a reload, and fit 1280 and 375 px', async () => {
    // Prepare: a batch of two requests and one the API refuses (n over 4).
    const created = await fetch(`${api.url}/v1/batches`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        requests: [
          { prompt: 'A lighthouse at dusk', size: '512*512' },
          { prompt: 'A red fox in snow', size: '512*512' },
          { prompt: 'Too many', n: 9 },
        ],
        metadata: { project: 'console-batches-test' },
      }),
    });
    expect(created.status).toBe(202);
    const { id } = (await created.json()) as { id: string };
    const { page, problems } = await watchedPage();
    await page.goto(`${api.url}/console/batches/${id}`);
    await page.getByLabel('API token').fill(token);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(`${api.url}/console/batches/${id}`);

    // Act: the page follows the batch until both generations show their image.
    const atFirst = await page.evaluate<Shown>(SHOWN);
    await page.evaluate('window.sameDocument = true');
    const ended = await waitFor(
      async () => {
        const shown = await page.evaluate<Shown>(SHOWN);
        const done =
          shown.progress?.value === 3 &&
          shown.cards.length === 2 &&
          shown.cards.every((card) => card.status === 'succeeded' && (card.width ?? 0) > 0);
        return done && shown;
      },
      { what: `batch ${id}'s page to show both images`, timeoutMs: 600_000, intervalMs: 250 },
    );
    const sameDocument = await page.evaluate('window.sameDocument');
    const rejected = await page.locator('.problem:has(h2:text("Rejected lines")) li').allTextContents();
    // Then both pages at both widths: nothing may reach past the viewport.
    const layout: Record<string, { by: number; wider: string[] }> = {};
    for (const path of [`/console/batches/${id}`, '/console/batches']) {
      for (const width of [1280, 375]) {
        await page.setViewportSize({ width, height: 900 });
        if (page.url() !== `${api.url}${path}`) await page.goto(`${api.url}${path}`);
        layout[`${path} at ${width} px`] = await page.evaluate<{ by: number; wider: string[] }>(OVERFLOW);
      }
    }
    const listed = await page.locator(`li.batch:has(a[href="/console/batches/${id}"])`).textContent();

    // Assess: it was followed live on one document; the progress, the counts and the rejected line.
    expect(sameDocument).toBe(true);
    expect(atFirst.progress?.max).toBe(3);
    expect(atFirst.status).toMatch(/^(in_progress|completed)$/);
    expect(ended.line).toMatch(/^(In progress|Completed): 3 of 3 lines done$/);
    expect(ended.progress).toEqual({ value: 3, max: 3 });
    expect(rejected).toEqual(['Line 3: invalid_request: n: must be at most 4']);
    for (const [where, overflow] of Object.entries(layout))
      expect(overflow, where).toEqual({ by: 0, wider: [] });
    expect(listed).toContain('console-batches-test');
    expect(listed).toMatch(/3 of 3 lines done/);
    expect(problems).toEqual([]);
    await page.close();
  }, 900_000);
});
