import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { afterEach, describe, expect, it } from 'vitest';
import { readAnnouncement } from '../../local/engine.js';
import { localS3Client } from '../../local/s3.js';
import {
  type Child,
  emulatorTasks,
  generate,
  getJson,
  localFolder,
  postGeneration,
  type ShownGeneration,
  startServer,
  waitFor,
  waitForEnds,
} from '../support/engine-processes.js';

/**
 * The life of the local engine, with real processes on one `.local/` folder: a server killed
 * and started again, two servers, Ctrl-C, `generate` beside `npm start`, a request file
 * delivered twice or put into the bucket. Nothing is lost, nothing runs twice, one process
 * dispatches.
 */
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {});
});

async function folder(prefix: string) {
  const made = await localFolder(prefix);
  cleanups.push(made.remove);
  return made.dir;
}

/** Stops a child at the end of the test, whatever happened. */
function owned<T extends Child>(process: T): T {
  cleanups.push(async () => {
    process.process.kill('SIGKILL');
    await process.exited;
  });
  return process;
}

interface Health {
  engine: {
    owner: { pid: number; kind: string };
    executions: number;
    waiting: number;
    granted: number;
    running: number;
  };
}

const small = { size: '512*512', steps: 30 };

describe('the local engine', { timeout: 300_000 }, () => {
  it('finishes every generation of a server killed with SIGKILL, once, when a new one starts', async () => {
    const dir = await folder('engine-kill-');
    const first = owned(await startServer(dir));
    const ids: string[] = [];
    for (let i = 0; i < 20; i += 1) {
      ids.push(
        await postGeneration(first.url, {
          prompt: `fox ${i}`,
          ...small,
          priority: i % 4 === 0 ? 'interactive' : 'batch',
        }),
      );
    }
    // Killed mid-burst: some done, some holding the account's slots, the rest waiting.
    await waitFor(
      async () => {
        const health = await getJson<Health>(`${first.url}/v1/health`);
        const done = (await waitForSome(first.url, ids)).length;
        return done >= 3 && health.engine.waiting > 0 && health.engine.running + health.engine.granted > 0;
      },
      { what: 'a burst part done, part running, part waiting', timeoutMs: 240_000 },
    );
    first.process.kill('SIGKILL');
    await first.exited;

    const second = owned(await startServer(dir));
    const ended = await waitForEnds(second.url, ids);

    expect(second.stdout()).toMatch(/left unfinished by an earlier run: \d+ resumed/);
    expect(ended.map((generation) => generation.status)).toEqual(ids.map(() => 'succeeded'));
    expect(emulatorTasks(dir).size).toBe(20);
  });

  it('has one process run the executions when two servers share a folder', async () => {
    const dir = await folder('engine-two-');
    const first = owned(await startServer(dir));
    const second = owned(await startServer(dir));

    const ids = await Promise.all(
      [first, second, first, second].map((server, i) =>
        postGeneration(server.url, { prompt: `two ${i}`, ...small }),
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
    const dir = await folder('engine-takeover-');
    const first = owned(await startServer(dir));
    const second = owned(await startServer(dir));
    const ids = await Promise.all(
      [0, 1, 2].map((i) => postGeneration(second.url, { prompt: `over ${i}`, ...small })),
    );

    first.process.kill('SIGKILL');
    await first.exited;
    const ended = await waitForEnds(second.url, ids);

    expect(ended.map((generation) => generation.status)).toEqual(ids.map(() => 'succeeded'));
    expect((await getJson<Health>(`${second.url}/v1/health`)).engine.owner.pid).toBe(second.pid);
    expect(emulatorTasks(dir).size).toBe(3);
  });

  it('stops on Ctrl-C, twice, and a third run finishes the interrupted generations too', async () => {
    const dir = await folder('engine-ctrl-c-');
    const interruptedIds: string[] = [];
    for (const attempt of [1, 2]) {
      const run = owned(
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

    const third = owned(generate(dir, ['after two interrupts', '--size', '512*512', '--json']));
    const { code } = await third.exited;
    expect(code).toBe(0);
    expect(JSON.parse(third.stdout()).status).toBe('succeeded');

    // Whatever the third run left running resumes with the next owner.
    const server = owned(await startServer(dir));
    const ended = await waitForEnds(server.url, interruptedIds);
    for (const generation of ended) {
      expect(generation.status === 'succeeded' || generation.error?.type === 'interrupted').toBe(true);
    }
    expect(emulatorTasks(dir).size).toBe(3);
  });

  it('runs `generate --from` beside a working server through the server, and a redelivery starts nothing', async () => {
    const dir = await folder('engine-from-');
    const server = owned(await startServer(dir));
    const apiIds = await Promise.all(
      [0, 1, 2].map((i) => postGeneration(server.url, { prompt: `api ${i}`, ...small })),
    );
    const file = path.join(dir, 'lines.jsonl');
    await writeFile(file, [0, 1, 2].map((i) => JSON.stringify({ prompt: `line ${i}`, ...small })).join('\n'));

    const first = owned(generate(dir, ['--from', file]));
    expect((await first.exited).code).toBe(0);
    const again = owned(generate(dir, ['--from', file, '--json']));
    expect((await again.exited).code).toBe(0);
    const redelivered = JSON.parse(again.stdout()) as {
      results: { id: string; status: string; delivery: string }[];
    };
    await waitForEnds(server.url, apiIds);

    expect(first.stderr()).toContain(`(PID ${server.pid}); this run hands its work to it`);
    const firstLines = [...first.stderr().matchAll(/line (\d+): (\w+) \((req-[\w-]+)\)/g)];
    expect(firstLines.map(([, line, status]) => [line, status])).toEqual([
      ['1', 'succeeded'],
      ['2', 'succeeded'],
      ['3', 'succeeded'],
    ]);
    expect(first.stderr()).toContain('3 completion event(s)');
    expect(redelivered.results.map((line) => [line.status, line.delivery])).toEqual([
      ['succeeded', 'duplicate'],
      ['succeeded', 'duplicate'],
      ['succeeded', 'duplicate'],
    ]);
    expect(redelivered.results.map((line) => line.id)).toEqual(firstLines.map(([, , , id]) => id));
    expect(emulatorTasks(dir).size).toBe(6);
  });

  it('stops npm start when SIGTERM goes to npm, and its generations resume with the next server', async () => {
    const dir = await folder('engine-npm-');
    const npm = owned(npmStart(dir));
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
    const next = owned(await startServer(dir));
    const [ended] = await waitForEnds(next.url, [id]);

    expect(npm.stdout()).toContain(
      '1 generation(s) will resume the next time `npm start` or `npm run generate` runs here.',
    );
    expect(ended?.status).toBe('succeeded');
    expect(emulatorTasks(dir).size).toBe(1);
  });

  it('starts a request file put into the local bucket, and writes its report', async () => {
    const dir = await folder('engine-drop-');
    const server = owned(await startServer(dir));
    const endpoint = /S3: (http:\/\/127\.0\.0\.1:\d+)/.exec(server.stdout())?.[1] ?? '';
    const s3 = localS3Client(endpoint);
    cleanups.push(async () => s3.destroy());

    await s3.send(
      new PutObjectCommand({
        Bucket: 'sd35-local-images',
        Key: 'requests/drop.jsonl',
        Body: `${JSON.stringify({ prompt: 'dropped', ...small })}\n{"prompt": ""}\n`,
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

/** `npm start` as a user types it: npm, its shell, then the server. */
function npmStart(dir: string): Child {
  const npm = spawn('npm', ['start'], {
    cwd: path.join(import.meta.dirname, '..', '..'),
    env: {
      ...process.env,
      PORT: '0',
      SD35_LOCAL_DIR: dir,
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  npm.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  npm.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  return {
    process: npm,
    pid: npm.pid ?? -1,
    stdout: () => stdout,
    stderr: () => stderr,
    exited: new Promise((resolve) => npm.once('exit', (code, signal) => resolve({ code, signal }))),
  };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

interface ReportShape {
  results: { line: number; id?: string; status: string }[];
}

/** The generations among `ids` that have ended. */
async function waitForSome(url: string, ids: readonly string[]): Promise<ShownGeneration[]> {
  const shown = await Promise.all(ids.map((id) => getJson<ShownGeneration>(`${url}/v1/generations/${id}`)));
  return shown.filter((generation) => ['succeeded', 'failed'].includes(generation.status));
}
