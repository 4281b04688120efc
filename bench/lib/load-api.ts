import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadRequests } from './load-rig.js';

/**
 * `bench:load --via-api`: N generations through a child `npm start` (its own temporary local
 * folder), over HTTP, in real time, against the emulator at DashScope's limits (2 submits/s, one
 * task running per account), as a user's burst reaches it. Measures what the server process
 * holds: its RSS at start, at its peak and once idle again, and the DynamoDB folder on disk.
 */
export interface ApiLoadSummary {
  readonly generations: number;
  readonly succeeded: number;
  readonly failed: number;
  readonly wallSeconds: number;
  readonly startRssMiB: number;
  readonly peakRssMiB: number;
  readonly idleRssMiB: number;
  readonly dynamodbDiskMiB: number;
  readonly tasks: number;
}

const ROOT = path.join(import.meta.dirname, '..', '..');
const FINAL = new Set(['succeeded', 'partial', 'failed', 'canceled', 'expired']);

export async function runApiLoad(options: {
  readonly n: number;
  /** The emulator's speed-up of run times; submits stay at 2/s. */
  readonly emulatorSpeed: number;
  /** How long the server is left idle before its idle RSS is read. */
  readonly idleSeconds: number;
  readonly progress: (text: string) => void;
}): Promise<ApiLoadSummary> {
  const dir = await mkdtemp(path.join(tmpdir(), 'bench-load-api-'));
  const server = spawn(process.execPath, ['--import', 'tsx/esm', 'local/server.ts'], {
    cwd: ROOT,
    env: {
      ...process.env,
      PORT: '0',
      SD35_LOCAL_DIR: dir,
      DASHSCOPE_EMULATOR_SPEED: String(options.emulatorSpeed),
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let stdout = '';
  server.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  const pid = server.pid ?? -1;
  let peakRss = 0;
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, rssOf(pid));
  }, 200);
  try {
    let url: string | undefined;
    for (let waited = 0; !url; waited += 100) {
      if (waited > 300_000) throw new Error(`npm start did not listen: ${stdout}`);
      url = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(stdout)?.[1];
      await sleep(100);
    }
    const base = url;
    await sleep(1000);
    const startRss = rssOf(pid);
    const started = performance.now();
    const ids: string[] = [];
    const requests = loadRequests(options.n);
    for (let i = 0; i < requests.length; i += 50) {
      const batch = requests.slice(i, i + 50).map(async (request) => {
        const response = await fetch(`${base}/v1/generations`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ ...request, priority: 'batch' }),
        });
        if (response.status !== 202) throw new Error(`POST: ${response.status} ${await response.text()}`);
        return ((await response.json()) as { id: string }).id;
      });
      ids.push(...(await Promise.all(batch)));
    }
    // Until the engine has nothing left: then each generation is read once.
    for (;;) {
      const { engine } = (await (await fetch(`${base}/v1/health`)).json()) as {
        engine: { executions: number; waiting: number };
      };
      options.progress(
        `${engine.executions} running or waiting in the engine, ${engine.waiting} in the queue`,
      );
      if (engine.executions === 0) break;
      await sleep(5000);
    }
    const wallSeconds = (performance.now() - started) / 1000;
    let succeeded = 0;
    let ended = 0;
    for (const id of ids) {
      const { status } = (await (await fetch(`${base}/v1/generations/${id}`)).json()) as { status: string };
      if (status === 'succeeded') succeeded += 1;
      if (FINAL.has(status)) ended += 1;
    }
    options.progress(`all ended (${ended}); idle for ${options.idleSeconds} s`);
    await sleep(options.idleSeconds * 1000);
    const idleRss = rssOf(pid);
    const { engine: idle } = (await (await fetch(`${base}/v1/health`)).json()) as {
      engine: { memory: unknown };
    };
    options.progress(`idle: ${JSON.stringify(idle.memory)}, ${rssBreakdown(pid)}`);
    return {
      generations: options.n,
      succeeded,
      failed: options.n - succeeded,
      wallSeconds: Math.round(wallSeconds),
      startRssMiB: mib(startRss),
      peakRssMiB: mib(peakRss),
      idleRssMiB: mib(idleRss),
      dynamodbDiskMiB: Number(
        execFileSync('du', ['-sm', path.join(dir, 'dynamodb')])
          .toString()
          .split('\t')[0],
      ),
      tasks: emulatorTaskCount(dir),
    };
  } finally {
    clearInterval(sampler);
    server.kill('SIGTERM');
    await new Promise((resolve) => server.once('exit', resolve));
    await rm(dir, { recursive: true, force: true });
  }
}

/** The resident set of a process, bytes (0 once it is gone). */
function rssOf(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
  } catch {
    return 0;
  }
}

/** The process's resident set split as the kernel counts it: anonymous (heaps), file-backed, shared memory. */
function rssBreakdown(pid: number): string {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const field = (name: string) =>
      Math.round(Number(new RegExp(`${name}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0) / 1024);
    return `RssAnon ${field('RssAnon')} MiB, RssFile ${field('RssFile')} MiB, RssShmem ${field('RssShmem')} MiB`;
  } catch {
    return 'no /proc';
  }
}

const mib = (bytes: number) => Math.round(bytes / 1024 / 1024);

function emulatorTaskCount(dir: string): number {
  const tasks = new Set<string>();
  for (const line of readFileSync(path.join(dir, 'emulator', 'tasks.jsonl'), 'utf8').split('\n')) {
    try {
      const entry = JSON.parse(line) as { op?: string; task?: { taskId?: string } };
      if (entry.op === 'add' && entry.task?.taskId) tasks.add(entry.task.taskId);
    } catch {
      // not a whole line
    }
  }
  return tasks.size;
}
