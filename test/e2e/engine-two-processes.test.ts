import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  emulatorTasks,
  engineTestScope,
  generate,
  getJson,
  type Health,
  postGeneration,
  SMALL,
  startServer,
  waitForEnds,
} from '../support/engine-processes.js';

/**
 * Two processes on one folder: one runs the executions, the other hands its work to it, and takes over when it dies; `generate --from` beside a server, delivered twice.
 * Real processes on one temporary `.local/` folder each (test/support/engine-processes.ts).
 */
const scope = engineTestScope();

describe('the local engine, shared', { timeout: 300_000 }, () => {
  it('has one process run the executions when two servers share a folder', async () => {
    const dir = await scope.folder('engine-two-');
    const first = scope.owned(await startServer(dir));
    const second = scope.owned(await startServer(dir));

    const ids = await Promise.all(
      [first, second, first, second].map((server, i) =>
        postGeneration(server.url, { prompt: `two ${i}`, ...SMALL }),
      ),
    );
    const ended = await waitForEnds(second.url, ids);
    const health = await getJson<Health>(`${second.url}/v1/health`);

    expect(ended.map((generation) => generation.status)).toEqual(ids.map(() => 'succeeded'));
    expect(health.engine.owner.pid).toBe(first.pid);
    expect(second.stdout()).toContain(`(PID ${first.pid}) runs the executions of this folder`);
    expect(emulatorTasks(dir).size).toBe(4);
  });

  it('lets a follower take over when the owner dies', async () => {
    const dir = await scope.folder('engine-takeover-');
    const first = scope.owned(await startServer(dir));
    const second = scope.owned(await startServer(dir));
    const ids = await Promise.all(
      [0, 1, 2].map((i) => postGeneration(second.url, { prompt: `over ${i}`, ...SMALL })),
    );

    first.process.kill('SIGKILL');
    await first.exited;
    const ended = await waitForEnds(second.url, ids);

    expect(ended.map((generation) => generation.status)).toEqual(ids.map(() => 'succeeded'));
    expect((await getJson<Health>(`${second.url}/v1/health`)).engine.owner.pid).toBe(second.pid);
    expect(emulatorTasks(dir).size).toBe(3);
  });

  it('runs `generate --from` beside a working server through the server, and a redelivery starts nothing', async () => {
    const dir = await scope.folder('engine-from-');
    const server = scope.owned(await startServer(dir));
    const apiIds = await Promise.all(
      [0, 1, 2].map((i) => postGeneration(server.url, { prompt: `api ${i}`, ...SMALL })),
    );
    const file = path.join(dir, 'lines.jsonl');
    await writeFile(file, [0, 1, 2].map((i) => JSON.stringify({ prompt: `line ${i}`, ...SMALL })).join('\n'));

    const first = scope.owned(generate(dir, ['--from', file]));
    expect((await first.exited).code, first.stderr()).toBe(0);
    const again = scope.owned(generate(dir, ['--from', file, '--json']));
    expect((await again.exited).code, again.stderr()).toBe(0);
    const redelivered = JSON.parse(again.stdout()) as {
      results: { id: string; status: string; delivery: string }[];
    };
    await waitForEnds(server.url, apiIds);

    expect(first.stderr()).toContain(`(PID ${server.pid}); this run hands its work to it`);
    // The file is one batch `file-<hash>`; its line N is the generation `file-<hash>-N`.
    const firstLines = [...first.stderr().matchAll(/line (\d+): (\w+) \((file-[\w-]{40})-(\d+)\)/g)];
    expect(firstLines.map(([, line, status, , idLine]) => [line, status, idLine])).toEqual([
      ['1', 'succeeded', '1'],
      ['2', 'succeeded', '2'],
      ['3', 'succeeded', '3'],
    ]);
    expect(new Set(firstLines.map(([, , , batchId]) => batchId)).size).toBe(1);
    expect(first.stderr()).toContain('3 completion event(s)');
    expect(redelivered.results.map((line) => [line.status, line.delivery])).toEqual([
      ['succeeded', 'duplicate'],
      ['succeeded', 'duplicate'],
      ['succeeded', 'duplicate'],
    ]);
    expect(redelivered.results.map((line) => line.id)).toEqual(
      firstLines.map(([, , , batchId, idLine]) => `${batchId}-${idLine}`),
    );
    expect(emulatorTasks(dir).size).toBe(6);
    // Each recorded as what started it: the API's, the request file's, and npm run generate's own.
    const single = scope.owned(generate(dir, ['one of its own', '--size', SMALL.size, '--json']));
    expect((await single.exited).code, single.stderr()).toBe(0);
    const { id: localId } = JSON.parse(single.stdout()) as { id: string };
    const sourceOf = async (id: string) =>
      (await getJson<{ source?: string }>(`${server.url}/v1/generations/${id}`)).source;
    expect(await sourceOf(apiIds[0] ?? '')).toBe('api');
    expect(await sourceOf(redelivered.results[0]?.id ?? '')).toBe('request-file');
    expect(await sourceOf(localId)).toBe('local');
  });
});
