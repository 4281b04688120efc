import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GenerationView } from '../../functions/api/schemas.js';
import { launchBrowser, untilTrue } from '../../local/browser.js';
import type { LocalApi } from '../../local/local-api.js';
import { startTestApi, type TestApi } from '../support/local-api.js';

/**
 * The console in a real Chromium (the one `npm ci` brings), against the local server as `npm start`
 * runs it, waits in real time so the page has something to follow: sign in with the token, create
 * a generation with the form, watch it to the end without a reload, and check every image loaded.
 */
const token = 'test-token-for-console-browser';
let testApi: TestApi;
let api: LocalApi;
let browser: Browser;

beforeAll(async () => {
  // Real waits (no virtual clock): the generation runs for seconds, as it does for a user.
  testApi = await startTestApi('console-browser-', { apiToken: token, virtualWaits: undefined });
  api = testApi.api;
  browser = await launchBrowser();
  // Synthesizing the stack, starting s3rver and unpacking Chromium take minutes on a busy machine.
}, 600_000);

afterAll(async () => {
  await browser?.close();
  await testApi?.close();
});

/** A page that records what a user would not see: script and CSP errors, failed requests. */
async function watchedPage(): Promise<{ page: Page; problems: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  // Playwright waits for ever by default: a missing element should fail the test, late.
  page.setDefaultTimeout(180_000);
  const problems: string[] = [];
  page.on('console', (message) => {
    if (message.type() === 'error') problems.push(`console: ${message.text()}`);
  });
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('requestfailed', (request) => problems.push(`request failed: ${request.url()}`));
  return { page, problems };
}

const naturalWidths = (page: Page, selector: string) =>
  page.evaluate<number[]>(
    `[...document.querySelectorAll(${JSON.stringify(selector)})].map((image) => image.complete ? image.naturalWidth : -1)`,
  );

describe('the console in a browser', () => {
  it('signs in, creates a generation with the form, follows it live to the end and shows every image', async () => {
    // Prepare
    const { page, problems } = await watchedPage();
    await page.goto(`${api.url}/console/`);
    await page.getByLabel('API token').fill(token);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(`${api.url}/console/`);

    // Act: the form, then the generation's page.
    await page.getByRole('link', { name: 'New generation' }).first().click();
    await page
      .getByLabel('Prompt', { exact: true })
      .fill('Eagle flying freely in the blue sky and white clouds');
    await page.getByLabel('Size (width × height)').selectOption('512*768');
    await page.getByLabel('Images (n)').fill('2');
    await page.getByRole('button', { name: 'Generate' }).click();
    await page.waitForURL(/\/console\/generations\/[\w-]+$/);
    const statusAtFirst = await page.locator('#live').getAttribute('data-live-status');
    await page.evaluate('window.sameDocument = true');
    await page.locator('#live[data-live-status="succeeded"]').waitFor({ timeout: 600_000 });
    await untilTrue(
      page,
      "[...document.querySelectorAll('#live img')].every((image) => image.complete)",
      120_000,
    );

    // Assess: it was still running when the page opened, and the page changed without a reload.
    expect(['queued', 'running']).toContain(statusAtFirst);
    expect(await page.evaluate('window.sameDocument')).toBe(true);
    expect(await naturalWidths(page, '#live img')).toEqual([512, 512]);
    expect(await page.getByRole('status').textContent()).toBe('Succeeded: 2 of 2 images');
    expect(problems).toEqual([]);
    await page.close();
  }, 900_000);

  it('shows the generation in the gallery with its thumbnail loaded, smaller than its image', async () => {
    // Prepare: a generation of its own, created through the API.
    const created = await fetch(`${api.url}/v1/generations`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'A lighthouse at dusk', size: '512*512' }),
    });
    const { id } = (await created.json()) as { id: string };
    const { page, problems } = await watchedPage();
    await page.goto(`${api.url}/console/`);
    await page.getByLabel('API token').fill(token);
    await page.getByRole('button', { name: 'Sign in' }).click();

    // Act: the card follows the generation live until it has its image.
    const card = page.locator(
      `li.card[data-live-status="succeeded"]:has(a[href="/console/generations/${id}"])`,
    );
    await card.waitFor({ timeout: 600_000 });
    await untilTrue(
      page,
      "[...document.querySelectorAll('li.card img')].every((image) => image.complete)",
      120_000,
    );

    // Assess: every card's image loaded; this card shows the thumbnail, smaller than the image.
    const widths = await naturalWidths(page, `li.card:has(a[href="/console/generations/${id}"]) img`);
    expect(widths).toHaveLength(1);
    expect(widths[0]).toBeGreaterThan(0);
    for (const width of await naturalWidths(page, 'li.card img')) expect(width).toBeGreaterThan(0);
    expect(await card.locator('img').getAttribute('alt')).toBe('A lighthouse at dusk');
    const shown = (await card.locator('img').getAttribute('src')) ?? '';
    const view = (await (
      await fetch(`${api.url}/v1/generations/${id}`, { headers: { authorization: `Bearer ${token}` } })
    ).json()) as GenerationView;
    const image = view.images?.[0];
    // The same object: each presigned link carries the second it was signed (X-Amz-Date), so two
    // links signed a second apart differ in their query and their signature only.
    const objectOf = (url: string | undefined) => new URL(url ?? 'about:blank').pathname;
    expect(objectOf(shown)).toBe(objectOf(image?.thumbnailUrl));
    expect(objectOf(shown)).toMatch(/\/thumbnails\/0\.webp$/);
    const [thumbnailBytes, imageBytes] = await Promise.all(
      [shown, image?.url ?? ''].map(async (url) => (await (await fetch(url)).arrayBuffer()).byteLength),
    );
    expect(thumbnailBytes).toBeGreaterThan(0);
    expect(thumbnailBytes).toBeLessThan(imageBytes ?? 0);
    expect(problems).toEqual([]);
    await page.close();
  }, 900_000);

  it('can be used from the keyboard alone: every form control is a tab stop, and Enter submits', async () => {
    // Prepare
    const { page, problems } = await watchedPage();
    await page.goto(`${api.url}/console/new`);
    await page.getByLabel('API token').fill(token);
    await page.keyboard.press('Enter');
    await page.waitForURL(`${api.url}/console/new`);

    // Act: walk the page with Tab, noting where the focus goes.
    const visited: string[] = [];
    for (let i = 0; i < 40; i++) {
      await page.keyboard.press('Tab');
      const focused = await page.evaluate<string>(
        "document.activeElement ? (document.activeElement.id || document.activeElement.textContent.trim()) : ''",
      );
      visited.push(focused);
      if (focused === 'Generate') break;
    }
    await page.focus('#f-prompt');
    await page.keyboard.type('A lighthouse typed from the keyboard');
    await page.keyboard.press('Tab');
    await page.keyboard.press('Tab');
    const fromKeyboard = await page.evaluate<string>('document.activeElement.id');
    await page.focus('#f-n');
    await page.keyboard.press('Enter');
    await page.waitForURL(/\/console\/generations\/[\w-]+$/);

    // Assess
    expect(visited[0]).toBe('Skip to content');
    for (const id of [
      'f-prompt',
      'f-negative_prompt',
      'f-model',
      'f-size',
      'f-priority',
      'f-n',
      'f-steps',
      'f-cfg',
      'f-shift',
      'f-seed',
      'f-init_image',
      'f-webhook_url',
      'Generate',
    ]) {
      expect(visited).toContain(id);
    }
    expect(fromKeyboard).toBe('f-model');
    expect(await page.locator('#live').count()).toBe(1);
    expect(problems).toEqual([]);
    await page.close();
  }, 900_000);
});
