import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach } from 'vitest';
import { waitFor } from './wait-for.js';

export { waitFor } from './wait-for.js';

/**
 * `npm start` and `npm run generate` as real processes on one local folder (`SD35_LOCAL_DIR`, a
 * temporary one per test), as a user runs them: started, killed, interrupted and doubled up.
 */
const ROOT = path.join(import.meta.dirname, '..', '..');

/** A fresh local folder; `remove` deletes it. */
export async function localFolder(prefix: string): Promise<{ dir: string; remove(): Promise<void> }> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

/** A child process with its output so far and its end. */
export interface Child {
  readonly process: ChildProcess;
  readonly pid: number;
  stdout(): string;
  stderr(): string;
  /** Settles with the exit code (or the signal that ended it). */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function child(args: string[], dir: string, env: Record<string, string> = {}): Child {
  const process_ = spawn(process.execPath, ['--import', 'tsx/esm', ...args], {
    cwd: ROOT,
    env: {
      ...process.env,
      SD35_LOCAL_DIR: dir,
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return observed(process_);
}

/** A spawned process with its output collected and its end as a promise. */
function observed(process_: ChildProcess): Child {
  let stdout = '';
  let stderr = '';
  process_.stdout?.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  process_.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    process_.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return {
    process: process_,
    pid: process_.pid ?? -1,
    stdout: () => stdout,
    stderr: () => stderr,
    exited,
  };
}

/** `npm start` on a free port; resolves once it listens and its engine is open. */
export async function startServer(
  dir: string,
  env: Record<string, string> = {},
): Promise<Child & { url: string }> {
  const server = child(['local/server.ts'], dir, { PORT: '0', ...env });
  const url = await waitFor(
    async () => {
      const ended = await Promise.race([server.exited, sleep(0).then(() => undefined)]);
      if (ended) throw new Error(`npm start ended (${JSON.stringify(ended)}): ${server.stderr()}`);
      return /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(server.stdout())?.[1];
    },
    { what: 'npm start to listen', timeoutMs: 240_000 },
  );
  return { ...server, url };
}

/** `npm run generate -- ARGS`. */
export function generate(dir: string, args: string[], env: Record<string, string> = {}): Child {
  return child(['local/generate.ts', ...args], dir, env);
}

/** The distinct tasks the emulator of `dir` holds (its journal survives its process). */
export function emulatorTasks(dir: string): Set<string> {
  const tasks = new Set<string>();
  let text = '';
  try {
    text = readFileSync(path.join(dir, 'emulator', 'tasks.jsonl'), 'utf8');
  } catch {
    return tasks;
  }
  for (const line of text.split('\n')) {
    try {
      const entry = JSON.parse(line) as { op?: string; task?: { taskId?: string } };
      if (entry.op === 'add' && entry.task?.taskId) tasks.add(entry.task.taskId);
    } catch {
      // a line cut by a kill
    }
  }
  return tasks;
}

/** A generation as the API shows it (the fields the tests read). */
export interface ShownGeneration {
  readonly id: string;
  readonly status: string;
  readonly error?: { readonly type: string };
  readonly queue?: unknown;
}

export async function getJson<T>(url: string): Promise<T> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`GET ${url}: ${response.status} ${await response.text()}`);
  return (await response.json()) as T;
}

export async function postGeneration(url: string, body: Record<string, unknown>): Promise<string> {
  const response = await fetch(`${url}/v1/generations`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (response.status !== 202) throw new Error(`POST: ${response.status} ${await response.text()}`);
  return ((await response.json()) as { id: string }).id;
}

const FINAL = new Set(['succeeded', 'partial', 'failed', 'canceled', 'expired']);

/** Waits until every generation has ended, as the API shows them; returns them. */
export async function waitForEnds(url: string, ids: readonly string[], timeoutMs = 240_000) {
  return waitFor(
    async () => {
      const shown = await Promise.all(
        ids.map((id) => getJson<ShownGeneration>(`${url}/v1/generations/${id}`).catch(() => undefined)),
      );
      return shown.every((generation) => generation && FINAL.has(generation.status))
        ? (shown as ShownGeneration[])
        : undefined;
    },
    { what: `${ids.length} generation(s) to end`, timeoutMs },
  );
}

/** A test's folders and children, removed and killed after it, whatever happened. */
export function engineTestScope() {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => {});
  });
  return {
    /** A fresh local folder for the test. */
    async folder(prefix: string): Promise<string> {
      const made = await localFolder(prefix);
      cleanups.push(made.remove);
      return made.dir;
    },
    /** Kills the child with SIGKILL at the end of the test. */
    owned<T extends Child>(running: T): T {
      cleanups.push(async () => {
        running.process.kill('SIGKILL');
        await running.exited;
      });
      return running;
    },
    /** Runs `cleanup` at the end of the test. */
    later(cleanup: () => Promise<unknown>): void {
      cleanups.push(cleanup);
    },
  };
}

/** `GET /v1/health`'s document (the fields the tests read). */
export interface Health {
  engine: {
    owner: { pid: number; kind: string };
    executions: number;
    waiting: number;
    granted: number;
    running: number;
    submitting: number;
  };
}

/** A small, quick request. */
export const SMALL = { size: '512*512', steps: 30 } as const;

/** `npm start` as a user types it: npm, its shell, then the server. */
export function npmStart(dir: string): Child {
  const npm = spawn('npm', ['start'], {
    cwd: ROOT,
    env: {
      ...process.env,
      PORT: '0',
      SD35_LOCAL_DIR: dir,
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return observed(npm);
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The generations among `ids` that have ended, as the API shows them now. */
export async function endedAmong(url: string, ids: readonly string[]): Promise<ShownGeneration[]> {
  const shown = await Promise.all(ids.map((id) => getJson<ShownGeneration>(`${url}/v1/generations/${id}`)));
  return shown.filter((generation) => FINAL.has(generation.status));
}
