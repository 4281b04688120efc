import { appendFileSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import type { Account, AccountJournal } from './account.js';
import type { TaskRecord } from './task-record.js';
import { SD_MODELS } from './types.js';

/**
 * The state file: an append-only journal of an account's task set, one JSON document per line,
 * so tasks outlive the emulator's process as the real service's do.
 *
 * - `{"op":"add","task":{…}}`: a task was submitted (or, after a compaction, is still known);
 * - `{"op":"cancel","taskId":…,"at":…}`: it was canceled while PENDING;
 * - `{"op":"forget","taskId":…,"at":…}`: its record was dropped (`forgetTask`).
 *
 * Starts, ends and expiries are not written: replaying the lines in order, with the account
 * settled to each line's time first, gives them again. A compaction writes each task still known
 * with the times it has by then (started, canceled), as the tasks that set them may be gone.
 */

const indexes = z.array(z.number().int().nonnegative());

/** JSON has no Infinity (`TaskPlan.durationMs`: RUNNING for ever), so it is spelled out. */
const durationSchema = z
  .union([z.number().nonnegative(), z.literal('Infinity')])
  .transform((duration) => (duration === 'Infinity' ? Number.POSITIVE_INFINITY : duration));

const taskSchema = z.object({
  taskId: z.string().min(1),
  requestId: z.string(),
  request: z.object({
    model: z.enum(SD_MODELS),
    prompt: z.string(),
    negativePrompt: z.string().optional(),
    initImage: z.string().optional(),
    width: z.number().int().positive(),
    height: z.number().int().positive(),
    n: z.number().int().positive(),
    steps: z.number().int().positive(),
    cfg: z.number(),
    seed: z.number().int().nonnegative(),
    shift: z.number(),
  }),
  submittedAt: z.number(),
  durationMs: durationSchema,
  failImages: indexes,
  omitResults: indexes,
  fail: z.object({ code: z.string(), message: z.string() }).optional(),
  files: z.array(z.string().min(1)),
  resultOrigins: z.array(z.tuple([z.number().int().nonnegative(), z.string()])),
  scheduledAt: z.number().optional(),
  canceledAt: z.number().optional(),
});

const lineSchema = z.discriminatedUnion('op', [
  z.object({ op: z.literal('add'), task: taskSchema }),
  z.object({ op: z.literal('cancel'), taskId: z.string(), at: z.number() }),
  z.object({ op: z.literal('forget'), taskId: z.string(), at: z.number() }),
]);

/** One line of the journal, as written. */
type JournalLine = z.input<typeof lineSchema>;

/** One line of the journal, as read back. */
type JournalEntry = z.output<typeof lineSchema>;

/**
 * Rebuilds `account` from the journal at `file` (none yet: no tasks), brings it up to `now`,
 * rewrites the file with only the tasks still known, then journals every later change to it.
 * A line that does not parse (e.g. cut by a crash mid-write) is skipped; the count is returned.
 */
export function openTaskJournal(file: string, account: Account, now: number): { skippedLines: number } {
  mkdirSync(path.dirname(file), { recursive: true });
  const skippedLines = replay(readJournal(file), account);
  account.settle(now);
  rewrite(file, account.all().map(addLine));
  account.journalTo(new FileJournal(file));
  return { skippedLines };
}

/** Appends each change as one line, synchronously, so it is on disk before the call is answered. */
class FileJournal implements AccountJournal {
  readonly #file: string;

  constructor(file: string) {
    this.#file = file;
  }

  added(record: TaskRecord): void {
    this.#append(addLine(record));
  }

  canceled(taskId: string, at: number): void {
    this.#append({ op: 'cancel', taskId, at });
  }

  forgot(taskId: string, at: number): void {
    this.#append({ op: 'forget', taskId, at });
  }

  cleared(): void {
    writeFileSync(this.#file, '');
  }

  #append(line: JournalLine): void {
    appendFileSync(this.#file, `${JSON.stringify(line)}\n`);
  }
}

function readJournal(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw error;
  }
}

/** Applies every parsable line in order; returns how many lines were skipped. */
function replay(text: string, account: Account): number {
  let skipped = 0;
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    const entry = parseLine(line);
    if (entry) apply(entry, account);
    else skipped += 1;
  }
  return skipped;
}

function parseLine(line: string): JournalEntry | undefined {
  let json: unknown;
  try {
    json = JSON.parse(line);
  } catch {
    return undefined;
  }
  const parsed = lineSchema.safeParse(json);
  return parsed.success ? parsed.data : undefined;
}

/** Settles to the line's time first, so starts and ends happen as they did before the change. */
function apply(entry: JournalEntry, account: Account): void {
  if (entry.op === 'add') {
    account.settle(entry.task.submittedAt);
    if (!account.get(entry.task.taskId)) account.restore(recordOf(entry.task));
    return;
  }
  account.settle(entry.at);
  if (entry.op === 'cancel') account.cancel(entry.taskId, entry.at);
  else account.forget(entry.taskId, entry.at);
}

/** Writes the whole journal anew: a temporary file renamed over the old one. */
function rewrite(file: string, lines: JournalLine[]): void {
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, lines.map((line) => `${JSON.stringify(line)}\n`).join(''));
  renameSync(temporary, file);
}

/**
 * The line of a task. `downloadFaults` are left out: each download uses one up, so after a
 * restart the list would answer faults again that were already answered; the task's images are
 * then served normally. `resultOrigins` are kept, they are part of every answer about the task.
 */
function addLine(record: TaskRecord): JournalLine {
  const { durationMs } = record;
  return {
    op: 'add',
    task: {
      taskId: record.taskId,
      requestId: record.requestId,
      request: record.request,
      submittedAt: record.submittedAt,
      durationMs: Number.isFinite(durationMs) ? durationMs : 'Infinity',
      failImages: [...record.failImages],
      omitResults: [...record.omitResults],
      fail: record.fail,
      files: [...record.files],
      resultOrigins: [...record.resultOrigins],
      scheduledAt: record.scheduledAt,
      canceledAt: record.canceledAt,
    },
  };
}

function recordOf(task: z.output<typeof taskSchema>): TaskRecord {
  const { request } = task;
  return {
    taskId: task.taskId,
    requestId: task.requestId,
    request: {
      model: request.model,
      prompt: request.prompt,
      negativePrompt: request.negativePrompt,
      initImage: request.initImage,
      width: request.width,
      height: request.height,
      n: request.n,
      steps: request.steps,
      cfg: request.cfg,
      seed: request.seed,
      shift: request.shift,
    },
    submittedAt: task.submittedAt,
    durationMs: task.durationMs,
    failImages: new Set(task.failImages),
    omitResults: new Set(task.omitResults),
    fail: task.fail,
    files: task.files,
    downloadFaults: new Map(),
    resultOrigins: new Map(task.resultOrigins),
    scheduledAt: task.scheduledAt,
    canceledAt: task.canceledAt,
  };
}
