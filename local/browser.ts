import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rename, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import chromium from '@sparticuz/chromium';
import { type Browser, type Page, chromium as playwright } from 'playwright-core';

/**
 * Where `@sparticuz/chromium`'s binary was already unpacked: the test suite's global setup
 * unpacks it ({@link unpackChromium}) before its workers start, and they inherit the path.
 */
export const UNPACKED_CHROMIUM_ENV = 'SD35_CHROMIUM_EXECUTABLE';

/**
 * A headless Chromium from npm: `@sparticuz/chromium` carries the binary inside its package, so
 * `npm ci` is the whole set-up (no browser download). The first launch on a machine unpacks it
 * into the temp folder (`env.TMPDIR`, else the OS's; {@link unpackChromium}). Where that binary
 * cannot run, `CHROMIUM_PATH` names another (Debian: /usr/bin/chromium).
 */
export async function launchBrowser(env: NodeJS.ProcessEnv = process.env): Promise<Browser> {
  const fallback = env.CHROMIUM_PATH || undefined;
  return playwright.launch({
    executablePath:
      fallback ?? (env[UNPACKED_CHROMIUM_ENV] || (await unpackChromium(env.TMPDIR || tmpdir()))),
    // Its Lambda flags minus --single-process, with which closing the last page ends the browser.
    args: fallback ? ['--no-sandbox'] : chromium.args.filter((arg) => arg !== '--single-process'),
    headless: true,
  });
}

const execFileAsync = promisify(execFile);
const chromiumEntry = createRequire(import.meta.url).resolve('@sparticuz/chromium');
/** Run with the temp folder set to a fresh one: the package unpacks there and prints the binary's path. */
const UNPACK =
  'const { default: chromium } = await import(process.argv[1]); process.stdout.write(await chromium.executablePath());';

/**
 * Unpacks `@sparticuz/chromium` (the binary, its SwiftShader libraries and fonts, about 210 MB)
 * once per version of the package and user, into `<root>/sd35-chromium-<version>-<user>/`, and
 * returns the binary's path. The package itself unpacks in place, into the temp folder's root:
 * two processes that launch at once both write `/tmp/chromium`, and one starts it while the
 * other still writes it (spawn ETXTBSY); one stopped half way leaves a broken binary that every
 * later launch finds. Here each unpacking writes a private folder (in a child process whose
 * temp folder it is) and renames it into place in one step, so any number may run at once: the
 * first rename wins, the others remove theirs, and nothing is started from a file being written.
 */
export async function unpackChromium(root: string = tmpdir()): Promise<string> {
  const user = process.getuid?.() ?? userInfo().username;
  const dir = path.join(root, `sd35-chromium-${chromiumVersion()}-${user}`);
  const binary = path.join(dir, 'chromium');
  if (existsSync(binary)) return binary;
  const staging = await mkdtemp(`${dir}.unpacking-`);
  try {
    const { stdout } = await execFileAsync(
      process.execPath,
      ['--input-type=module', '-e', UNPACK, pathToFileURL(chromiumEntry).href],
      { env: { ...process.env, TMPDIR: staging } },
    );
    if (stdout !== path.join(staging, 'chromium')) {
      throw new Error(`@sparticuz/chromium unpacked to ${stdout}, not into ${staging}`);
    }
    // Fails when another unpacking renamed its folder first (ENOTEMPTY): that one is complete too.
    await rename(staging, dir).catch((error: unknown) => {
      if (!existsSync(binary)) throw error;
    });
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
  return binary;
}

function chromiumVersion(): string {
  const manifest = path.join(path.dirname(chromiumEntry), '..', 'package.json');
  return (JSON.parse(readFileSync(manifest, 'utf8')) as { version: string }).version;
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
