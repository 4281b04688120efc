import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type LoadRequest, loadRequests } from './load-rig.js';

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

/** A child `npm start` in its own temporary folder, against the emulator at `emulatorSpeed`. */
interface ChildServer {
  readonly base: string;
  readonly pid: number;
  readonly dir: string;
  stop(): Promise<void>;
}

async function startChildServer(emulatorSpeed: number): Promise<ChildServer> {
  const dir = await mkdtemp(path.join(tmpdir(), 'bench-load-api-'));
  const server = spawn(process.execPath, ['--import', 'tsx/esm', 'local/server.ts'], {
    cwd: ROOT,
    env: {
      ...process.env,
      PORT: '0',
      SD35_LOCAL_DIR: dir,
      DASHSCOPE_EMULATOR_SPEED: String(emulatorSpeed),
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let stdout = '';
  server.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  const stop = async () => {
    if (server.exitCode === null && server.signalCode === null) {
      server.kill('SIGTERM');
      await new Promise((resolve) => server.once('exit', resolve));
    }
    await rm(dir, { recursive: true, force: true });
  };
  try {
    let url: string | undefined;
    for (let waited = 0; !url; waited += 100) {
      if (waited > 300_000) throw new Error(`npm start did not listen: ${stdout}`);
      url = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(stdout)?.[1];
      await sleep(100);
    }
    return { base: url, pid: server.pid ?? -1, dir, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** POSTs one generation in the batch lane; its id. */
async function postBatchLane(base: string, request: LoadRequest): Promise<string> {
  const response = await fetch(`${base}/v1/generations`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ...request, priority: 'batch' }),
  });
  if (response.status !== 202) throw new Error(`POST: ${response.status} ${await response.text()}`);
  return ((await response.json()) as { id: string }).id;
}

export async function runApiLoad(options: {
  readonly n: number;
  /** The emulator's speed-up of run times; submits stay at 2/s. */
  readonly emulatorSpeed: number;
  /** How long the server is left idle before its idle RSS is read. */
  readonly idleSeconds: number;
  readonly progress: (text: string) => void;
}): Promise<ApiLoadSummary> {
  const server = await startChildServer(options.emulatorSpeed);
  const { base, pid, dir } = server;
  let peakRss = 0;
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, rssOf(pid));
  }, 200);
  try {
    await sleep(1000);
    const startRss = rssOf(pid);
    const started = performance.now();
    const ids: string[] = [];
    const requests = loadRequests(options.n);
    for (let i = 0; i < requests.length; i += 50) {
      ids.push(
        ...(await Promise.all(requests.slice(i, i + 50).map((request) => postBatchLane(base, request)))),
      );
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
    await server.stop();
  }
}

/**
 * `bench:load --via-api --eta`: how right the start estimate of the last of `n` generations queued
 * at once is (issue 23, item 8). POSTs `n` generations in the batch lane through a child `npm start`
 * (50 at a time, the last one alone after the others), reads the last one's `queue.estimatedStartAt`
 * right after its 202, then follows it (a GET every second; its estimate kept every
 * `readEverySeconds`) until its task started at the emulator (the index's `dashscope.scheduledTime`),
 * and stops the server: the rest of the burst is not waited for.
 */
export interface EtaSummary {
  readonly generations: number;
  readonly emulatorSpeed: number;
  /** |estimatedStartAt − actualStartAt| / (actualStartAt − readAt): the error as a share of the wait. */
  readonly etaError: number;
  /** Read right after the last POST's 202 (`readAt`), with its position then. */
  readonly estimatedStartAt: string;
  readonly actualStartAt: string;
  readonly readAt: string;
  readonly position: number;
  /** Seconds from the read to the actual start. */
  readonly waitedSeconds: number;
  /** Seconds the n POSTs took. */
  readonly postSeconds: number;
  /** The estimate as a client reading it every `readEverySeconds` saw it: seconds after the first read, position, error. */
  readonly later: readonly {
    readonly atSeconds: number;
    readonly position: number;
    readonly etaError: number;
  }[];
}

export async function runApiEta(options: {
  readonly n: number;
  readonly emulatorSpeed: number;
  /** How often the later reads are kept. @default 60 */
  readonly readEverySeconds?: number;
  readonly progress: (text: string) => void;
}): Promise<EtaSummary> {
  if (options.n < 2) throw new Error('--eta needs --n of at least 2');
  const server = await startChildServer(options.emulatorSpeed);
  const { base } = server;
  const view = async (id: string) =>
    (await (await fetch(`${base}/v1/generations/${id}`)).json()) as {
      status: string;
      queue?: { position: number; estimatedStartAt: string };
      dashscope?: { scheduledTime?: string };
    };
  try {
    await sleep(1000);
    const requests = loadRequests(options.n);
    const posted = performance.now();
    const ahead = requests.slice(0, -1);
    for (let i = 0; i < ahead.length; i += 50) {
      await Promise.all(ahead.slice(i, i + 50).map((request) => postBatchLane(base, request)));
    }
    const last = await postBatchLane(base, requests.at(-1) as LoadRequest);
    const postSeconds = (performance.now() - posted) / 1000;
    const readAtMs = Date.now();
    const first = await view(last);
    if (!first.queue)
      throw new Error(`the last generation shows no place right after its POST: ${JSON.stringify(first)}`);
    options.progress(
      `${options.n} POSTed in ${postSeconds.toFixed(1)} s; the last at position ${first.queue.position}, expected to start ${first.queue.estimatedStartAt}`,
    );
    const reads: { atMs: number; position: number; estimateMs: number }[] = [];
    let nextRead = readAtMs + (options.readEverySeconds ?? 60) * 1000;
    let actualStartAt: string | undefined;
    for (;;) {
      await sleep(1000);
      const now = Date.now();
      const current = await view(last);
      actualStartAt = current.dashscope?.scheduledTime;
      if (actualStartAt) break;
      if (FINAL.has(current.status))
        throw new Error(`the last generation ended ${current.status} without a start`);
      if (current.queue && now >= nextRead) {
        reads.push({
          atMs: now,
          position: current.queue.position,
          estimateMs: Date.parse(current.queue.estimatedStartAt),
        });
        options.progress(
          `position ${current.queue.position}, expected to start ${current.queue.estimatedStartAt}`,
        );
        nextRead += (options.readEverySeconds ?? 60) * 1000;
      }
    }
    const actualMs = Date.parse(actualStartAt);
    const errorOf = (estimateMs: number, atMs: number) =>
      Math.round((Math.abs(estimateMs - actualMs) / Math.max(1, actualMs - atMs)) * 10_000) / 10_000;
    return {
      generations: options.n,
      emulatorSpeed: options.emulatorSpeed,
      etaError: errorOf(Date.parse(first.queue.estimatedStartAt), readAtMs),
      estimatedStartAt: first.queue.estimatedStartAt,
      actualStartAt: new Date(actualMs).toISOString(),
      readAt: new Date(readAtMs).toISOString(),
      position: first.queue.position,
      waitedSeconds: Math.round((actualMs - readAtMs) / 100) / 10,
      postSeconds: Math.round(postSeconds * 10) / 10,
      later: reads.map((read) => ({
        atSeconds: Math.round((read.atMs - readAtMs) / 1000),
        position: read.position,
        etaError: errorOf(read.estimateMs, read.atMs),
      })),
    };
  } finally {
    await server.stop();
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
