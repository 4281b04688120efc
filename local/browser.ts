import chromium from '@sparticuz/chromium';
import { type Browser, type Page, chromium as playwright } from 'playwright-core';

/**
 * Where `@sparticuz/chromium`'s binary was already unpacked (the test suite unpacks it once per
 * run, before its workers start, so no two launches unpack it at once).
 */
export const UNPACKED_CHROMIUM_ENV = 'SD35_CHROMIUM_EXECUTABLE';

/**
 * A headless Chromium from npm: `@sparticuz/chromium` carries the binary inside its package, so
 * `npm ci` is the whole set-up (no browser download). The first launch unpacks it to the temp
 * folder. Where that binary cannot run, `CHROMIUM_PATH` names another (Debian: /usr/bin/chromium).
 */
export async function launchBrowser(env: NodeJS.ProcessEnv = process.env): Promise<Browser> {
  const fallback = env.CHROMIUM_PATH || undefined;
  return playwright.launch({
    executablePath: fallback ?? (env[UNPACKED_CHROMIUM_ENV] || (await chromium.executablePath())),
    // Its Lambda flags minus --single-process, with which closing the last page ends the browser.
    args: fallback ? ['--no-sandbox'] : chromium.args.filter((arg) => arg !== '--single-process'),
    headless: true,
  });
}

/**
 * Waits until a JavaScript expression is true in the page. Playwright's `waitForFunction` with a
 * string evaluates it through `eval` inside the page, which the console's CSP forbids (rightly);
 * `page.evaluate` of an expression does not, so this polls that instead.
 * @throws Error naming the expression when it is still false after `timeoutMs`
 */
export async function untilTrue(page: Page, expression: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await page.evaluate<boolean>(expression))) {
    if (Date.now() > deadline) throw new Error(`still false after ${timeoutMs} ms: ${expression}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
