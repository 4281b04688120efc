import { describe, expect, it } from 'vitest';
import { createApiApp } from '../../functions/api/app.js';
import { FAVICON_SVG_NAME } from '../../functions/api/console/favicon.js';
import type { Clock } from '../../functions/shared/clock.js';
import { silentLogger } from '../../functions/shared/logger.js';
import { FakeExecutionService } from '../api/fake-executions.js';
import { fakePresign } from '../api/fixtures.js';
import { MemoryGenerationIndex } from '../fakes/memory-index.js';

const clock: Clock = { now: () => Date.parse('2026-03-01T12:34:56.789Z') };

/** A console behind an API token: the assets must load on the sign-in page, before any session. */
function setup() {
  const index = new MemoryGenerationIndex();
  return createApiApp(
    {
      executions: new FakeExecutionService(clock, index),
      index,
      presign: fakePresign,
      clock,
      logger: silentLogger,
    },
    { console: true, apiToken: 'asset-test-token' },
  );
}

describe('the console assets', () => {
  it.each([
    ['console.js', 'text/javascript; charset=utf-8', 'public, max-age=300', "'use strict';"],
    ['console.css', 'text/css; charset=utf-8', 'public, max-age=300', ':root {'],
    [FAVICON_SVG_NAME, 'image/svg+xml', 'public, max-age=31536000, immutable', '<svg '],
  ])('serves %s without a session, with its type and caching', async (name, type, cacheControl, start) => {
    const response = await setup().request(`/console/assets/${name}`);

    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe(type);
    expect(response.headers.get('cache-control')).toBe(cacheControl);
    expect((await response.text()).startsWith(start)).toBe(true);
  });
});
