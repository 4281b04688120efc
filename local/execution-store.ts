import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as z from 'zod';
import type { ExecutionRecord, ExecutionStatus } from '../functions/shared/execution-service.js';

/**
 * Where an execution stands, as the local engine keeps it: what Step Functions keeps of an
 * execution (name, input, status, dates, output or error) and, while it runs, the last Task state
 * it entered with that state's input, from which a new engine redrives it.
 */
export interface StoredExecution {
  readonly name: string;
  readonly input: Record<string, unknown>;
  /** Epoch ms. */
  readonly startDate: number;
  readonly status: ExecutionStatus;
  readonly stopDate?: number;
  readonly output?: unknown;
  readonly error?: string;
  readonly cause?: string;
  /** The last state entered and its raw input (before InputPath and Parameters), while RUNNING. */
  readonly checkpoint?: Checkpoint;
}

export interface Checkpoint {
  readonly state: string;
  readonly input: unknown;
}

const storedSchema = z.object({
  name: z.string().min(1),
  input: z.record(z.string(), z.unknown()),
  startDate: z.number(),
  status: z.enum(['RUNNING', 'SUCCEEDED', 'FAILED', 'TIMED_OUT', 'ABORTED', 'PENDING_REDRIVE']),
  stopDate: z.number().optional(),
  output: z.unknown().optional(),
  error: z.string().optional(),
  cause: z.string().optional(),
  checkpoint: z.object({ state: z.string().min(1), input: z.unknown() }).optional(),
});

/** The end of an execution, as it is recorded. */
export type ExecutionEnd = Pick<StoredExecution, 'status' | 'stopDate' | 'output' | 'error' | 'cause'>;

/**
 * The local engine's executions, kept as Step Functions keeps them: they outlive the process.
 * One JSON file per execution (written whole to a temporary file, then renamed over the old one,
 * so a crash leaves the previous version or the new one, never half of one): in `running/` while
 * it runs, in `directory` itself once it ended. Opening the store reads `running/` alone, so a
 * start costs the same however many executions ended before. Without a directory, in memory
 * (tests that need no restart).
 *
 * Only running executions stay in memory; an ended one is read from its file when asked for, so
 * a long-lived server holds no history.
 */
export class ExecutionStore {
  readonly #directory: string | undefined;
  readonly #running = new Map<string, StoredExecution>();
  /** Ended executions, kept only without a directory. */
  readonly #ended = new Map<string, StoredExecution>();
  /** Each execution's writes, in order: a later write never lands before an earlier one. */
  readonly #writes = new Map<string, Promise<void>>();

  constructor(directory: string | undefined) {
    this.#directory = directory;
    if (!directory) return;
    mkdirSync(path.join(directory, RUNNING), { recursive: true });
    // What a writer killed mid-write left (one engine writes here; any earlier one is gone).
    for (const folder of [directory, path.join(directory, RUNNING)]) {
      for (const file of readdirSync(folder)) if (file.endsWith('.tmp')) rmSync(path.join(folder, file));
    }
    for (const file of readdirSync(path.join(directory, RUNNING))) {
      if (!file.endsWith('.json')) continue;
      const record = this.#read(path.join(RUNNING, file));
      // Ended, and stopped before its running file was removed: the ended file is the record.
      if (record && !existsSync(path.join(directory, fileOf(record.name)))) {
        this.#running.set(record.name, record);
      }
    }
  }

  /** The executions that had not ended when the store was opened or since, oldest first. */
  running(): StoredExecution[] {
    return [...this.#running.values()].sort((a, b) => a.startDate - b.startDate);
  }

  get(name: string): StoredExecution | undefined {
    const running = this.#running.get(name);
    if (running) return running;
    if (!this.#directory) return this.#ended.get(name);
    return this.#read(fileOf(name));
  }

  /** Records a new execution, running from the first state with the input. */
  async create(record: Omit<StoredExecution, 'status'> & { checkpoint: Checkpoint }): Promise<void> {
    const stored: StoredExecution = { ...record, status: 'RUNNING' };
    this.#running.set(record.name, stored);
    this.#ended.delete(record.name);
    await this.#write(stored);
  }

  /** Notes the state a running execution has entered; an execution that ended is left alone. */
  async checkpoint(name: string, checkpoint: Checkpoint): Promise<void> {
    const running = this.#running.get(name);
    if (!running) return;
    const stored = { ...running, checkpoint };
    this.#running.set(name, stored);
    await this.#write(stored);
  }

  /** Records the end of an execution; its checkpoint is dropped. */
  async end(name: string, end: ExecutionEnd): Promise<void> {
    const running = this.#running.get(name) ?? this.get(name);
    if (!running) return;
    const { checkpoint: _, ...rest } = running;
    const stored: StoredExecution = { ...rest, ...end };
    this.#running.delete(name);
    if (!this.#directory) this.#ended.set(name, stored);
    await this.#write(stored);
  }

  /** Settles once every write asked for so far is on disk. */
  async flush(): Promise<void> {
    await Promise.all(this.#writes.values());
  }

  #write(record: StoredExecution): Promise<void> {
    const directory = this.#directory;
    if (!directory) return Promise.resolve();
    const running = path.join(directory, RUNNING, fileOf(record.name));
    const file = record.status === 'RUNNING' ? running : path.join(directory, fileOf(record.name));
    const previous = this.#writes.get(record.name) ?? Promise.resolve();
    const next = previous.then(async () => {
      const temporary = `${file}.${process.pid}.tmp`;
      await writeFile(temporary, JSON.stringify(record));
      await rename(temporary, file).catch(async (error: unknown) => {
        await rm(temporary, { force: true });
        throw error;
      });
      if (file !== running) await rm(running, { force: true });
    });
    const settled = next.catch(() => {});
    this.#writes.set(record.name, settled);
    void settled.then(() => {
      if (this.#writes.get(record.name) === settled) this.#writes.delete(record.name);
    });
    return next;
  }

  #read(file: string): StoredExecution | undefined {
    if (!this.#directory) return undefined;
    let text: string;
    try {
      text = readFileSync(path.join(this.#directory, file), 'utf8');
    } catch {
      return undefined;
    }
    try {
      return storedSchema.parse(JSON.parse(text)) as StoredExecution;
    } catch {
      return undefined;
    }
  }
}

/** The folder of the executions still running. */
const RUNNING = 'running';

/** An execution's file name: its name made safe for a path (execution names are `[\w-]+` anyway). */
const fileOf = (name: string) => `${encodeURIComponent(name)}.json`;

/** A stored execution as the execution port describes it. */
export function executionRecordOf(stored: StoredExecution): ExecutionRecord {
  return {
    name: stored.name,
    status: stored.status,
    startDate: new Date(stored.startDate),
    ...(stored.stopDate !== undefined ? { stopDate: new Date(stored.stopDate) } : {}),
    input: structuredClone(stored.input),
    ...(stored.output !== undefined ? { output: stored.output } : {}),
    ...(stored.error !== undefined ? { error: stored.error } : {}),
    ...(stored.cause !== undefined ? { cause: stored.cause } : {}),
  };
}
