import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import { formatCstTime, parseCompactCstTime } from '../../local/dashscope-emulator/cst-time.js';
import { renderPng } from '../../local/dashscope-emulator/png.js';
import { SlidingWindowLimiter } from '../../local/dashscope-emulator/rate-limiter.js';

describe('renderPng', () => {
  it('writes a valid RGB PNG of the requested size', async () => {
    const bytes = await renderPng('a running cat', 42, 640, 512);
    const image = PNG.sync.read(bytes);
    expect([image.width, image.height]).toEqual([640, 512]);
    // IHDR colour type byte: 2 is truecolour without alpha.
    expect(bytes[25]).toBe(2);
  });

  it('is deterministic in prompt and seed', async () => {
    const image = await renderPng('a running cat', 42, 512, 512);
    expect((await renderPng('a running cat', 42, 512, 512)).equals(image)).toBe(true);
    expect((await renderPng('a running cat', 43, 512, 512)).equals(image)).toBe(false);
    expect((await renderPng('a sleeping cat', 42, 512, 512)).equals(image)).toBe(false);
  });
});

describe('CST times', () => {
  it('formats epoch ms as China Standard Time without a zone', () => {
    expect(formatCstTime(Date.UTC(2024, 5, 14, 6, 30, 44, 96))).toBe('2024-06-14 14:30:44.096');
    expect(formatCstTime(Date.UTC(2024, 5, 14, 20, 0, 0, 0))).toBe('2024-06-15 04:00:00.000');
  });

  it("parses the list API's compact times as CST and refuses impossible dates", () => {
    expect(parseCompactCstTime('20240614143044')).toBe(Date.UTC(2024, 5, 14, 6, 30, 44));
    expect(parseCompactCstTime('20240231000000')).toBeUndefined();
    expect(parseCompactCstTime('2024061414304')).toBeUndefined();
  });
});

describe('SlidingWindowLimiter', () => {
  it('allows `limit` events in any window, counting from each event', () => {
    const limiter = new SlidingWindowLimiter(2, 1000);
    expect(limiter.tryAcquire(0)).toBe(true);
    expect(limiter.tryAcquire(600)).toBe(true);
    expect(limiter.tryAcquire(999)).toBe(false);
    expect(limiter.tryAcquire(1000)).toBe(true);
    expect(limiter.tryAcquire(1500)).toBe(false);
    expect(limiter.tryAcquire(1600)).toBe(true);
  });
});
