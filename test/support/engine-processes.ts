import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

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

/**
 * Polls `condition` every 100 ms until it returns something other than undefined or false, and
 * returns that; fails naming `what` after `timeoutMs` (generous: the machine may be busy).
 */
export async function waitFor<T>(
  condition: () => Promise<T | undefined | false> | T | undefined | false,
  options: { readonly what: string; readonly timeoutMs: number },
): Promise<T> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    const value = await condition();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline)
      throw new Error(`Timed out after ${options.timeoutMs} ms waiting for ${options.what}`);
    await sleep(100);
  }
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
