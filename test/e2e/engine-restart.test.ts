import { describe, expect, it } from 'vitest';
import { readAnnouncement } from '../../local/engine.js';
import {
  emulatorTasks,
  endedAmong,
  engineTestScope,
  getJson,
  type Health,
  isAlive,
  npmStart,
  postGeneration,
  SMALL,
  startServer,
  waitFor,
  waitForEnds,
} from '../support/engine-processes.js';

/**
 * A server killed with SIGKILL mid-burst, and `npm start` stopped through npm: every generation ends, once, with the next server.
 * Real processes on one temporary `.local/` folder each (test/support/engine-processes.ts).
 */
const scope = engineTestScope();

/** A generation's status, and its error when it has one. */
const outcomeOf = (generation: { status: string; error?: unknown }) =>
  generation.error ? `${generation.status}: ${JSON.stringify(generation.error)}` : generation.status;

describe('the local engine, killed or stopped', { timeout: 300_000 }, () => {
  it('finishes every generation of a server killed with SIGKILL, once, when a new one starts', async () => {
    const dir = await scope.folder('engine-kill-');
    const first = scope.owned(await startServer(dir));
    const ids: string[] = [];
    for (let i = 0; i < 20; i += 1) {
      ids.push(
        await postGeneration(first.url, {
          prompt: `fox ${i}`,
          ...SMALL,
          priority: i % 4 === 0 ? 'interactive' : 'batch',
        }),
      );
    }
    // Killed mid-burst: some done, some holding the account's slots, the rest waiting; at most one
    // submit without its answer (two lost answers at once cannot be told apart: docs/decisions/0004-submitting-twice.md).
    await waitFor(
      async () => {
        const health = await getJson<Health>(`${first.url}/v1/health`);
        const done = (await endedAmong(first.url, ids)).length;
        const { waiting, running, granted, submitting } = health.engine;
        return done >= 3 && waiting > 0 && running + granted > 0 && submitting <= 1;
      },
      { what: 'a burst part done, part running, part waiting', timeoutMs: 240_000 },
    );
    first.process.kill('SIGKILL');
    await first.exited;

    const second = scope.owned(await startServer(dir));
    const ended = await waitForEnds(second.url, ids);

    expect(second.stdout()).toMatch(/left unfinished by an earlier run: \d+ resumed/);
    // A failure is shown with its error: what ended it says why.
    expect(ended.map(outcomeOf)).toEqual(ids.map(() => 'succeeded'));
    expect(emulatorTasks(dir).size).toBe(20);
  });

  it('stops npm start when SIGTERM goes to npm, and its generations resume with the next server', async () => {
    const dir = await scope.folder('engine-npm-');
    const npm = scope.owned(npmStart(dir));
    const url = await waitFor(() => /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(npm.stdout())?.[1], {
      what: 'npm start to listen',
      timeoutMs: 240_000,
    });
    const server = await waitFor(() => readAnnouncement(dir), { what: 'engine.json', timeoutMs: 60_000 });
    const id = await postGeneration(url, { prompt: 'left running', size: '512*512', steps: 400, n: 4 });
    await waitFor(async () => (await getJson<Health>(`${url}/v1/health`)).engine.running > 0, {
      what: 'its task to run',
      timeoutMs: 120_000,
    });

    npm.process.kill('SIGTERM');
    await waitFor(() => !isAlive(server.pid), { what: 'the server to stop', timeoutMs: 60_000 });
    const next = scope.owned(await startServer(dir));
    const [ended] = await waitForEnds(next.url, [id]);

    expect(npm.stdout()).toContain(
      '1 generation(s) will resume the next time `npm start` or `npm run generate` runs here.',
    );
    expect(ended?.status).toBe('succeeded');
    expect(emulatorTasks(dir).size).toBe(1);
  });
});
