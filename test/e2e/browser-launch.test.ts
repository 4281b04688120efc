import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, describe, expect, it } from 'vitest';
import { launchBrowser, UNPACKED_CHROMIUM_ENV } from '../../local/browser.js';

/**
 * Two launches at once that both have to unpack Chromium: `npm test` once failed with
 * `browserType.launch: spawn ETXTBSY` when two browser files launched together and one started
 * the binary the other was still writing into the shared temp folder. Here both launches go
 * through the project's launcher into one fresh temp folder, as two files would on a fresh
 * machine, and each browser then renders a page of its own.
 */
let root: string | undefined;
const browsers: Browser[] = [];

afterAll(async () => {
  await Promise.all(browsers.map((browser) => browser.close()));
  if (root) await rm(root, { recursive: true, force: true });
});

/** A small page in `browser`: the text it shows and a screenshot of it. */
async function render(browser: Browser, text: string): Promise<{ shown: string | null; png: Buffer }> {
  const page = await browser.newPage({ viewport: { width: 320, height: 200 } });
  await page.setContent(`<h1 id="text" style="font: 24px sans-serif">${text}</h1>`);
  return { shown: await page.textContent('#text'), png: await page.screenshot() };
}

describe('launchBrowser', () => {
  it('launches two browsers at once, each unpacking Chromium, and each renders its page', async () => {
    // Prepare: a temp folder nothing was unpacked into, and no path from the global setup.
    root = await mkdtemp(path.join(tmpdir(), 'sd35-two-browsers-'));
    const env = { ...process.env, TMPDIR: root, [UNPACKED_CHROMIUM_ENV]: '' };

    // Act
    const launched = await Promise.allSettled([launchBrowser(env), launchBrowser(env)]);
    for (const result of launched) if (result.status === 'fulfilled') browsers.push(result.value);
    const pages = await Promise.all(browsers.map((browser, i) => render(browser, `browser ${i}`)));

    // Assess: both started (no ETXTBSY), both drew a 320 × 200 PNG of their own text, and one
    // unpacked folder is left, no half-written one beside it.
    expect(
      launched.map((result) => (result.status === 'rejected' ? String(result.reason) : 'launched')),
    ).toEqual(['launched', 'launched']);
    expect(pages.map((page) => page.shown)).toEqual(['browser 0', 'browser 1']);
    for (const { png } of pages) {
      expect(png.subarray(1, 4).toString()).toBe('PNG');
      expect([png.readUInt32BE(16), png.readUInt32BE(20)]).toEqual([320, 200]);
    }
    if (!process.env.CHROMIUM_PATH) {
      expect(await readdir(root)).toEqual([expect.stringMatching(/^sd35-chromium-[\w.-]+$/)]);
    }
  });
});
