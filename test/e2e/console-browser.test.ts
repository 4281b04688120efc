import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GenerationView } from '../../functions/api/schemas.js';
import { launchBrowser, untilTrue } from '../../local/browser.js';
import type { LocalApi } from '../../local/local-api.js';
import { startTestApi, type TestApi } from '../support/local-api.js';
import { watchedPage as watchPage } from '../support/watched-page.js';

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

const watchedPage = () => watchPage(browser, { width: 1200, height: 900 });

const naturalWidths = (page: Page, selector: string) =>
  page.evaluate<number[]>(
    `[...document.querySelectorAll(${JSON.stringify(selector)})].map((image) => image.complete ? image.naturalWidth : -1)`,
  );

interface FormLayout {
  /** Width of the model select's longest option, and the room its box has for text. */
  readonly modelText: number;
  readonly modelRoom: number;
  /** Controls whose content is wider than their box (scrollWidth > clientWidth). */
  readonly overflowing: string[];
  /** Controls not at the top edge of the others in fields that start on the same line. */
  readonly misaligned: string[];
  /** The ids of the row fields' controls, grouped by the line their field starts on. */
  readonly lines: string[][];
}

/** Measures the create form's rows in the page (an expression: the CSP forbids eval'd functions). */
const FORM_LAYOUT = `(() => {
  const select = document.getElementById('f-model');
  const style = getComputedStyle(select);
  const context = document.createElement('canvas').getContext('2d');
  context.font = [style.fontStyle, style.fontWeight, style.fontSize, style.fontFamily].join(' ');
  const modelText = Math.max(...[...select.options].map((option) => context.measureText(option.text).width));
  // The box's width less its padding and the drop-down arrow (about 20 px in Chromium).
  const modelRoom = select.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight) - 20;
  const controls = [...document.querySelectorAll('.row .field')].map((field) => field.querySelector('input, select'));
  const overflowing = controls.filter((control) => control.scrollWidth > control.clientWidth).map((control) => control.id);
  const byLine = new Map();
  for (const control of controls) {
    const line = Math.round(control.closest('.field').getBoundingClientRect().top);
    byLine.set(line, [...(byLine.get(line) ?? []), control]);
  }
  const misaligned = [];
  for (const group of byLine.values()) {
    const top = Math.round(group[0].getBoundingClientRect().top);
    for (const control of group) if (Math.abs(control.getBoundingClientRect().top - top) > 1) misaligned.push(control.id);
  }
  const lines = [...byLine.entries()].sort(([a], [b]) => a - b).map(([, group]) => group.map((control) => control.id));
  return { modelText, modelRoom, overflowing, misaligned, lines };
})()`;

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

  it('fits the form to its labels at 1280 and 375 px, shows images in a grid on a wide screen, and has an icon', async () => {
    // Prepare: a generation of two images to show, and a signed-in page.
    const created = await fetch(`${api.url}/v1/generations`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: 'Two lighthouses side by side', size: '512*512', n: 2 }),
    });
    const { id } = (await created.json()) as { id: string };
    const { page, problems } = await watchedPage();
    await page.goto(`${api.url}/console/new`);
    await page.getByLabel('API token').fill(token);
    await page.keyboard.press('Enter');
    await page.waitForURL(`${api.url}/console/new`);

    // Act: the form's measurements at both widths, then the generation's page at both.
    const form: Record<number, FormLayout> = {};
    const grid: Record<number, { columns: number; figures: number }> = {};
    for (const width of [1280, 375]) {
      await page.setViewportSize({ width, height: 900 });
      await page.goto(`${api.url}/console/new`);
      form[width] = await page.evaluate<FormLayout>(FORM_LAYOUT);
    }
    await page.goto(`${api.url}/console/generations/${id}`);
    await page.locator('#live[data-live-status="succeeded"]').waitFor({ timeout: 600_000 });
    for (const width of [1280, 375]) {
      await page.setViewportSize({ width, height: 900 });
      grid[width] = await page.evaluate<{ columns: number; figures: number }>(
        `(() => { const figures = [...document.querySelectorAll('#live .images figure')];
          return { figures: figures.length, columns: new Set(figures.map((f) => Math.round(f.getBoundingClientRect().left))).size }; })()`,
      );
    }
    const icon = await page.evaluate<{ href: string; status: number; type: string | null }>(
      `(async () => { const href = document.querySelector('link[rel=icon]').href; const answer = await fetch(href);
          return { href, status: answer.status, type: answer.headers.get('content-type') }; })()`,
    );
    const ico = await fetch(`${api.url}/favicon.ico`);

    // Assess: at each width the model select shows its longest option whole, nothing scrolls
    // sideways, and the controls of fields that start on one line share a top edge.
    for (const width of [1280, 375]) {
      const layout = form[width] as FormLayout;
      expect(layout.modelText, `${width} px`).toBeLessThanOrEqual(layout.modelRoom);
      expect(layout.overflowing, `${width} px`).toEqual([]);
      expect(layout.misaligned, `${width} px`).toEqual([]);
    }
    expect(form[1280]?.lines).toEqual([
      ['f-model', 'f-size', 'f-priority'],
      ['f-n', 'f-steps', 'f-cfg', 'f-shift'],
      ['f-seed'],
    ]);
    expect(grid[1280]).toEqual({ figures: 2, columns: 2 });
    expect(grid[375]).toEqual({ figures: 2, columns: 1 });
    expect(icon).toMatchObject({ status: 200, type: 'image/svg+xml' });
    expect(ico.status).toBe(200);
    expect(ico.headers.get('content-type')).toBe('image/x-icon');
    expect(ico.headers.get('cache-control')).toMatch(/max-age=31536000/);
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
