import { PNG } from 'pngjs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AdjustableClock } from '../../functions/shared/clock.js';
import { renderPng } from '../../local/dashscope-emulator/png.js';
import { type RunningEmulator, startEmulator } from '../../local/dashscope-emulator/server.js';

const KEY = 'sk-server-test';
const DAY_MS = 24 * 60 * 60 * 1000;

describe('the emulator over real HTTP', () => {
  let clock: AdjustableClock;
  let emulator: RunningEmulator;

  beforeEach(async () => {
    clock = new AdjustableClock();
    emulator = await startEmulator({ clock, apiKey: KEY });
  });

  afterEach(async () => {
    await emulator.close();
  });

  async function finishedTask(parameters: Record<string, unknown>): Promise<string[]> {
    const submitted = await fetch(`${emulator.url}/services/aigc/text2image/image-synthesis`, {
      method: 'POST',
      headers: {
        Authorization: `Bearer ${KEY}`,
        'X-DashScope-Async': 'enable',
        'Content-Type': 'application/json',
      },
      body: JSON.stringify({
        model: 'stable-diffusion-3.5-large',
        input: { prompt: 'a lighthouse' },
        parameters,
      }),
    });
    const { output } = (await submitted.json()) as { output: { task_id: string } };
    clock.advance(10 * 60 * 1000);
    const queried = await fetch(`${emulator.url}/tasks/${output.task_id}`, {
      headers: { Authorization: `Bearer ${KEY}` },
    });
    const body = (await queried.json()) as {
      output: { task_status: string; results: Array<{ url: string }> };
    };
    expect(body.output.task_status).toBe('SUCCEEDED');
    return body.output.results.map((result) => result.url);
  }

  it('listens on 127.0.0.1 and exposes the DashScope base URL', () => {
    expect(emulator.origin).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(emulator.url).toBe(`${emulator.origin}/api/v1`);
    expect(emulator.apiKey).toBe(KEY);
  });

  it('accepts only 2 of 5 concurrent submits', async () => {
    const statuses = await Promise.all(
      Array.from({ length: 5 }, async () => {
        const response = await fetch(`${emulator.url}/services/aigc/text2image/image-synthesis`, {
          method: 'POST',
          headers: { Authorization: `Bearer ${KEY}`, 'X-DashScope-Async': 'enable' },
          body: JSON.stringify({ model: 'stable-diffusion-3.5-large', input: { prompt: 'x' } }),
        });
        return response.status;
      }),
    );
    expect(statuses.sort()).toEqual([200, 200, 429, 429, 429]);
  });

  it('serves each result as a valid PNG of the requested size, seed + index', async () => {
    const urls = await finishedTask({ size: '640*512', n: 2, seed: 7 });
    expect(urls).toHaveLength(2);
    for (const [index, url] of urls.entries()) {
      expect(url.startsWith(`${emulator.origin}/results/`)).toBe(true);
      expect(new URL(url).searchParams.get('OSSAccessKeyId')).toBeTruthy();
      const response = await fetch(url);
      expect(response.status).toBe(200);
      expect(response.headers.get('content-type')).toBe('image/png');
      const bytes = Buffer.from(await response.arrayBuffer());
      expect(Number(response.headers.get('content-length'))).toBe(bytes.length);
      const image = PNG.sync.read(bytes);
      expect([image.width, image.height]).toEqual([640, 512]);
      expect(bytes.equals(await renderPng('a lighthouse', 7 + index, 640, 512))).toBe(true);
    }
  });

  it('refuses a tampered signature with OSS-style 403 XML', async () => {
    const [url = ''] = await finishedTask({ size: '512*512' });
    const tampered = new URL(url);
    tampered.searchParams.set('Signature', 'AAAAAAAAAAAAAAAAAAAAAAAAAAA=');
    const response = await fetch(tampered);
    expect(response.status).toBe(403);
    expect(response.headers.get('content-type')).toContain('application/xml');
    expect(await response.text()).toContain('<Code>AccessDenied</Code>');

    const longer = new URL(url);
    longer.searchParams.set('Expires', String(Number(longer.searchParams.get('Expires')) + 3600));
    expect((await fetch(longer)).status).toBe(403);
  });

  it('refuses a URL after it expired, 24 h after the task ended', async () => {
    const [url = ''] = await finishedTask({ size: '512*512' });
    expect(Number(new URL(url).searchParams.get('Expires')) * 1000).toBeGreaterThan(
      clock.now() + DAY_MS - 11 * 60_000,
    );
    clock.advance(DAY_MS);
    const response = await fetch(url);
    expect(response.status).toBe(403);
    const body = await response.text();
    expect(body).toContain('<Code>AccessDenied</Code>');
    expect(body).toContain('Request has expired.');
  });

  it('answers an injected download fault as OSS XML', async () => {
    const [url = ''] = await finishedTask({ size: '512*512' });
    emulator.control.injectFault('download', {
      status: 503,
      code: 'ServiceUnavailable',
      message: 'try later',
    });
    const failed = await fetch(url);
    expect(failed.status).toBe(503);
    expect(await failed.text()).toContain('<Code>ServiceUnavailable</Code>');
    expect((await fetch(url)).status).toBe(200);
  });
});
