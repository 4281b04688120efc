import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { localS3Client } from '../../local/s3.js';
import {
  emulatorTasks,
  engineTestScope,
  generate,
  SMALL,
  startServer,
  waitFor,
  waitForEnds,
} from '../support/engine-processes.js';

/**
 * Ctrl-C to `npm run generate`, twice, and a request file put straight into the local bucket.
 * Real processes on one temporary `.local/` folder each (test/support/engine-processes.ts).
 */
const scope = engineTestScope();

describe('the local engine, interrupted', { timeout: 300_000 }, () => {
  it('stops on Ctrl-C, twice, and a third run finishes the interrupted generations too', async () => {
    const dir = await scope.folder('engine-ctrl-c-');
    const interruptedIds: string[] = [];
    for (const attempt of [1, 2]) {
      const run = scope.owned(
        generate(dir, [`interrupted ${attempt}`, '--n', '4', '--steps', '200', '--size', '512*512']),
      );
      const id = await waitFor(() => /generation (gen-[\w-]+):/.exec(run.stderr())?.[1], {
        what: 'the run to start its generation',
        timeoutMs: 240_000,
      });
      await waitFor(() => /DashScope (PENDING|RUNNING)/.test(run.stderr()), {
        what: 'its DashScope task',
        timeoutMs: 120_000,
      });
      run.process.kill('SIGINT');
      const { code } = await run.exited;
      expect(code).toBe(130);
      expect(run.stderr()).toMatch(
        /\d+ generation\(s\) will resume the next time `npm start` or `npm run generate` runs here/,
      );
      interruptedIds.push(id);
    }

    const third = scope.owned(generate(dir, ['after two interrupts', '--size', '512*512', '--json']));
    const { code } = await third.exited;
    expect(code).toBe(0);
    expect(JSON.parse(third.stdout()).status).toBe('succeeded');

    // Each was resumed, not ended `interrupted`; whatever the third run left running resumes with the next owner.
    const server = scope.owned(await startServer(dir));
    const ended = await waitForEnds(server.url, interruptedIds);
    for (const generation of ended) {
      expect(generation.status).toBe('succeeded');
    }
    expect(emulatorTasks(dir).size).toBe(3);
  });

  it('exits on one Ctrl-C while a request file runs, and the next run finishes its batch, each line once', async () => {
    const dir = await scope.folder('engine-ctrl-c-from-');
    const file = path.join(dir, 'many.jsonl');
    // The first line runs long enough to be interrupted; the others are quick.
    const lines = Array.from({ length: 6 }, (_, i) =>
      JSON.stringify({ prompt: `line ${i + 1}`, size: '512*512', ...(i === 0 ? { n: 4, steps: 200 } : {}) }),
    );
    await writeFile(file, `${lines.join('\n')}\n`);
    const run = scope.owned(generate(dir, ['--from', file]));
    await waitFor(() => /in_progress/.test(run.stderr()), {
      what: 'the batch to start',
      timeoutMs: 240_000,
    });
    run.process.kill('SIGINT');
    // One Ctrl-C ends it: the stopped runs' timers do not hold the process.
    const { code } = await run.exited;
    expect(code).toBe(130);

    const again = scope.owned(generate(dir, ['--from', file, '--json']));
    const { code: second } = await again.exited;
    expect(second).toBe(0);
    const report = JSON.parse(again.stdout()) as { batch?: { counts?: Record<string, number> } };
    expect(report.batch?.counts).toMatchObject({ total: 6, succeeded: 6 });
    expect(emulatorTasks(dir).size).toBe(6);
  });

  it('starts a request file put into the local bucket, and writes its report', async () => {
    const dir = await scope.folder('engine-drop-');
    const server = scope.owned(await startServer(dir));
    const endpoint = /S3: (http:\/\/127\.0\.0\.1:\d+)/.exec(server.stdout())?.[1] ?? '';
    const s3 = localS3Client(endpoint);
    scope.later(async () => s3.destroy());

    await s3.send(
      new PutObjectCommand({
        Bucket: 'sd35-local-images',
        Key: 'requests/drop.jsonl',
        Body: `${JSON.stringify({ prompt: 'dropped', ...SMALL })}\n{"prompt": ""}\n`,
      }),
    );
    const report = await waitFor(
      async () => {
        const object = await s3
          .send(
            new GetObjectCommand({
              Bucket: 'sd35-local-images',
              Key: 'requests/drop.jsonl.result',
            }),
          )
          .catch(() => undefined);
        return object
          ? (JSON.parse((await object.Body?.transformToString()) ?? '') as ReportShape)
          : undefined;
      },
      { what: 'the request file report', timeoutMs: 120_000 },
    );
    const started = report.results.filter((line) => line.status === 'started');
    const ended = await waitForEnds(
      server.url,
      started.map((line) => line.id ?? ''),
    );

    expect(report.results.map((line) => line.status)).toEqual(['started', 'rejected']);
    expect(ended.map((generation) => generation.status)).toEqual(['succeeded']);
  });
});

/** The trigger's report of a request file (the fields the test reads). */
interface ReportShape {
  results: { line: number; id?: string; status: string }[];
}
