import { describe, expect, it } from 'vitest';
import { type ApiOptions, createApiApp } from '../../functions/api/app.js';
import { engineStatusLine } from '../../functions/api/console/engine-status.js';
import type { Clock } from '../../functions/shared/clock.js';
import { silentLogger } from '../../functions/shared/logger.js';
import { FakeExecutionService } from '../api/fake-executions.js';
import { fakePresign } from '../api/fixtures.js';
import { MemoryGenerationIndex } from '../fakes/memory-index.js';

/** The local engine's health: `GET /v1/health` and the console's status line. */
const clock: Clock = { now: () => Date.parse('2026-03-01T12:34:56.789Z') };

function setup(options: ApiOptions = {}) {
  const index = new MemoryGenerationIndex();
  const executions = new FakeExecutionService(clock, index);
  return createApiApp(
    { executions, index, presign: fakePresign, clock, logger: silentLogger },
    {
      console: true,
      ...options,
    },
  );
}

const health = {
  owner: { pid: 4242, kind: 'server', startedAt: '2026-03-01T12:00:00.000Z' },
  executions: 6,
  waiting: 3,
  granted: 1,
  running: 2,
  stalled: [{ id: 'gen-1', quietSeconds: 900, expectedRunSeconds: 60 }],
};

describe('the local engine health', () => {
  it('is served at /v1/health behind the API token, with the owner and the counts', async () => {
    const app = setup({ engineHealth: async () => health, apiToken: 'secret-token' });

    const refused = await app.request('/v1/health');
    const shown = await app.request('/v1/health', { headers: { authorization: 'Bearer secret-token' } });

    expect(refused.status).toBe(401);
    expect(await shown.json()).toEqual({ status: 'ok', engine: health });
  });

  it('does not exist without an engine (on AWS)', async () => {
    expect((await setup().request('/v1/health')).status).toBe(404);
  });

  it('is a status line on every console page', async () => {
    const app = setup({ engineHealth: async () => health });

    const page = await (await app.request('/console/')).text();

    expect(page).toContain(
      '<p class="engine-status" role="status">Local engine: npm start (PID 4242) · 3 waiting · 1 granted · 2 running · <strong>1 stalled</strong></p>',
    );
  });

  it('says so when the engine does not answer, and leaves pages without an engine alone', async () => {
    const failing = setup({
      engineHealth: async () => {
        throw new Error('connection refused');
      },
    });

    expect(await (await failing.request('/console/')).text()).toContain('Local engine: not answering');
    expect(await (await setup().request('/console/')).text()).not.toContain('engine-status');
  });
});

describe('the engine status line', () => {
  it('names who runs the executions, and marks stalled ones only when there are some', async () => {
    const line = (stalled: unknown[], kind = 'generate') =>
      engineStatusLine(async () => ({ ...health, owner: { pid: 7, kind }, stalled }));

    expect(await line([])).toBe(
      '<p class="engine-status" role="status">Local engine: npm run generate (PID 7) · 3 waiting · 1 granted · 2 running</p>',
    );
    expect(await line([{}, {}], 'server')).toContain('npm start (PID 7) ·');
    expect(await line([{}, {}], 'server')).toContain('· <strong>2 stalled</strong></p>');
  });

  it('says the engine is not answering for an answer it cannot read, so nothing unescaped reaches a page', async () => {
    const lines = await Promise.all(
      [{}, { ...health, owner: { pid: '<script>', kind: 'server' } }, { ...health, waiting: -1 }].map(
        (answer) => engineStatusLine(async () => answer),
      ),
    );

    expect(new Set(lines)).toEqual(
      new Set(['<p class="engine-status" role="status">Local engine: not answering</p>']),
    );
  });
});
