import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { launchBrowser, untilTrue } from './browser.js';
import { startLocalApi } from './local-api.js';
import { PROJECT_ROOT } from './pipeline.js';

/**
 * `npm run screenshots`: docs/console-gallery.png and docs/console-generation.png, taken in the
 * Chromium `npm ci` brings, of a fresh local stack (temporary data, emulator images) with a few
 * generations made through the API. Run it again after changing the console's look.
 */
const REQUESTS = [
  { prompt: 'Lighthouse on a cliff at dusk, warm light, long exposure', size: '1024*768' },
  { prompt: 'A red fox curled up in fresh snow, soft morning light', size: '768*1024', n: 2 },
  { prompt: 'Isometric tiny city on a floating island, pastel colours', size: '1024*1024' },
  { prompt: 'Macro photo of dew drops on a spider web', size: '1024*1024', steps: 30 },
  {
    prompt: 'Watercolour map of an imaginary archipelago',
    size: '1024*768',
    model: 'stable-diffusion-3.5-large-turbo',
  },
  {
    prompt: 'Eagle flying freely in the blue sky and white clouds',
    negative_prompt: 'blurry, low quality',
    size: '768*512',
    n: 2,
    seed: 1469780745,
  },
];

async function main(): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'sd35-screenshots-'));
  const api = await startLocalApi({
    port: 0,
    s3Directory: path.join(dir, 's3'),
    dynamoDirectory: path.join(dir, 'dynamodb'),
    // Real waits and retries: the times on the page are then the times a user sees.
  });
  const browser = await launchBrowser();
  try {
    const ids: string[] = [];
    for (const request of REQUESTS) {
      const response = await fetch(`${api.url}/v1/generations`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(request),
      });
      if (response.status !== 202)
        throw new Error(`create answered ${response.status}: ${await response.text()}`);
      ids.push(((await response.json()) as { id: string }).id);
      // The emulator, like DashScope, takes about 2 submits a second.
      await new Promise((resolve) => setTimeout(resolve, 600));
    }
    for (const id of ids) await untilEnded(api.url, id);

    const out = path.join(PROJECT_ROOT, 'docs');
    await mkdir(out, { recursive: true });
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    const settle = () =>
      untilTrue(
        page,
        '[...document.images].every((image) => image.complete && image.naturalWidth > 0)',
        60_000,
      );
    await page.goto(`${api.url}/console/`);
    await settle();
    await page.screenshot({ path: path.join(out, 'console-gallery.png') });
    await page.goto(`${api.url}/console/generations/${ids.at(-1)}`);
    await settle();
    await page.screenshot({ path: path.join(out, 'console-generation.png'), fullPage: true });
    process.stdout.write('wrote docs/console-gallery.png and docs/console-generation.png\n');
  } finally {
    await browser.close();
    await api.close();
    await rm(dir, { recursive: true, force: true });
  }
}

async function untilEnded(base: string, id: string): Promise<void> {
  for (;;) {
    const view = (await (await fetch(`${base}/v1/generations/${id}`)).json()) as { status: string };
    if (view.status !== 'queued' && view.status !== 'running') return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`error: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
});
