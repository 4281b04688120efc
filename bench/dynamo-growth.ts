/**
 * `tsx bench/dynamo-growth.ts [-- --generations 1000] [--idle 30] [--list 15] [--in-memory] [--json]`:
 * the disk and memory the local DynamoDB costs: dynalite on LevelDB in a temporary folder, in this
 * process, as `npm start` runs it (local/dynamodb.ts, the table as the synthesized stack declares
 * it); with --in-memory, dynalite without a folder, as the tests and bench:load run it.
 *
 * It replays the DynamoDB writes of N generations (20 at a time) through the real adapters
 * (`createDynamoGenerationIndex`, `createDynamoAdmissionQueue`): register; enqueue; a dispatcher
 * run (prune the recent tasks, slots, both lanes, state, grant, state); Submit's update, recorded
 * task and note; ten polls; the final update with two images; release. Times are virtual, one
 * generation every 3.6 s (1,000 an hour, bench:load's pace), so the recent-tasks map holds what
 * 15 minutes of submits leave in it. Then it idles, runs list queries (byCreated and byStatus,
 * 20 items) for a while, idles again, and reopens the folder.
 *
 * Prints the folder's size (`du`) and this process's RSS (VmRSS, RssAnon, RssFile of
 * /proc/self/status) after a GC at each step; exits 1 when the folder exceeds 100 MiB or the idle
 * RSS is more than 100 MiB above its start.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import * as z from 'zod';
import { RECENT_TASKS_MS, recentTasksItemId } from '../functions/shared/admission.js';
import { createDynamoAdmissionQueue } from '../functions/shared/aws/dynamodb-admission.js';
import { createDynamoGenerationIndex } from '../functions/shared/aws/dynamodb-index.js';
import { FINAL_STAGE, type GenerationUpdate } from '../functions/shared/generation-index.js';
import { generationRequestSchema } from '../functions/shared/generation-request.js';
import { ensureTable, startLocalDynamo } from '../local/dynamodb.js';
import { generationsTableDefinition, LOCAL_TABLE } from '../local/runner.js';
import { cachedSynthesis, SYNTH_CACHE_DIR_ENV } from '../local/synth-cache.js';
import { markdownTable, round } from './lib/table.js';

const ROOT = path.join(import.meta.dirname, '..');
const MIB = 1024 * 1024;
const IN_FLIGHT = 20;
const PACE_MS = 3600;
const POLLS = 10;
const ACCOUNT = 'main';
/** The targets. */
const MAX_FOLDER_MIB = 100;
const MAX_IDLE_RSS_GROWTH_MIB = 100;

const argsSchema = z.object({
  generations: z.coerce.number().int().positive().default(1000),
  idle: z.coerce.number().nonnegative().default(30),
  list: z.coerce.number().nonnegative().default(15),
  'in-memory': z.boolean().default(false),
  json: z.boolean().default(false),
});

interface Row {
  readonly step: string;
  /** Absent in memory. */
  readonly folderMib?: number;
  readonly rssMib: number;
  readonly anonMib?: number;
  readonly fileMib?: number;
  readonly heapMib: number;
}

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** The folder's size and this process's memory, after a full GC and a moment for V8 to return pages. */
async function measure(step: string, folder: string | undefined): Promise<Row> {
  gc();
  await sleep(500);
  const status = readStatus();
  const mib = (field: string) =>
    round(Number(new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(status)?.[1]) / 1024, 0);
  return {
    step,
    ...(folder
      ? { folderMib: Number(execFileSync('du', ['-sm', folder], { encoding: 'utf8' }).split('\t')[0]) }
      : {}),
    ...(status
      ? { rssMib: mib('VmRSS'), anonMib: mib('RssAnon'), fileMib: mib('RssFile') }
      : { rssMib: round(process.memoryUsage().rss / MIB, 0) }),
    heapMib: round(process.memoryUsage().heapUsed / MIB, 0),
  };
}

function readStatus(): string {
  try {
    return readFileSync('/proc/self/status', 'utf8');
  } catch {
    return '';
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      generations: { type: 'string' },
      idle: { type: 'string' },
      list: { type: 'string' },
      'in-memory': { type: 'boolean' },
      json: { type: 'boolean' },
    },
    strict: true,
  });
  const args = argsSchema.parse(values);
  const definition = generationsTableDefinition(
    cachedSynthesis({
      dir: process.env[SYNTH_CACHE_DIR_ENV] || path.join(ROOT, '.local', 'synth-cache'),
      root: ROOT,
    }).template,
  );
  const parent = await mkdtemp(path.join(tmpdir(), 'dynamo-growth-'));
  const folder = args['in-memory'] ? undefined : path.join(parent, 'dynamodb');
  const rows: Row[] = [];
  try {
    let dynamo = await startLocalDynamo({ directory: folder });
    await ensureTable(dynamo.client, LOCAL_TABLE, definition);
    const index = createDynamoGenerationIndex(dynamo.client, LOCAL_TABLE);
    const queue = createDynamoAdmissionQueue(dynamo.client, LOCAL_TABLE);
    rows.push(await measure('started', folder));

    const T0 = Date.UTC(2026, 0, 1);
    const request = generationRequestSchema.parse({
      prompt: 'A lighthouse on a rocky cliff at dawn, waves crashing below, soft golden light, oil painting',
      n: 2,
    }) as Record<string, unknown>;
    const replay = async (i: number) => {
      const id = `gen-${String(i).padStart(6, '0')}-${crypto.randomUUID()}`;
      const at = (ms: number) => T0 + i * PACE_MS + ms;
      const createdAt = new Date(at(0)).toISOString();
      await index.register({
        id,
        createdAt,
        source: 'api',
        caller: 'arn:aws:iam::123456789012:user/dev',
        request,
      });
      await queue.enqueue({
        id,
        lane: 'interactive',
        enqueuedAt: at(50),
        expectedRunSeconds: 20,
        token: 'T'.repeat(500),
      });
      // A dispatcher run.
      await queue.pruneTasks(ACCOUNT, at(100) - RECENT_TASKS_MS);
      await queue.slots(ACCOUNT);
      await queue.waiting('interactive', 2);
      await queue.waiting('batch', 2);
      const state = await queue.readState();
      await queue.grant(id, ACCOUNT, at(150));
      await queue.writeState({ interactiveStreak: (state.interactiveStreak + 1) % 4 });
      // Submit, the polls, Notify.
      const taskId = crypto.randomUUID();
      const dashscope = {
        account: ACCOUNT,
        taskId,
        status: 'PENDING',
        submittedAt: new Date(at(400)).toISOString(),
        submitTime: '2026-01-01 12:00:00.400',
      };
      const update = (stage: number, changes: Partial<GenerationUpdate>): GenerationUpdate => ({
        id,
        stage,
        status: 'queued',
        createdAt,
        source: 'api',
        request,
        progress: { done: 0, failed: 0, total: 2 },
        dashscope,
        ...changes,
      });
      await index.advance(update(1, {}));
      await queue.recordTask(ACCOUNT, taskId, at(400));
      await queue.note(id, { submittedAt: at(400), taskId });
      for (let poll = 1; poll <= POLLS; poll++) {
        const running = poll > 2;
        if (poll === 3) await queue.note(id, { startedAt: at(1000) });
        await index.advance(
          update(1 + poll, {
            status: running ? 'running' : 'queued',
            dashscope: { ...dashscope, status: running ? 'RUNNING' : 'PENDING' },
          }),
        );
      }
      const key = `generations/2026/01/01/${id}`;
      await index.advance(
        update(FINAL_STAGE, {
          status: 'succeeded',
          progress: { done: 2, failed: 0, total: 2 },
          dashscope: { ...dashscope, status: 'SUCCEEDED', endTime: '2026-01-01 12:00:03.500' },
          images: [0, 1].map((k) => ({
            index: k,
            key: `${key}/${k}.png`,
            bytes: 1_600_000 + k,
            sha256: 'ab'.repeat(32),
            contentType: 'image/png',
            seed: 4242 + k,
            thumbnail: {
              key: `${key}/${k}.webp`,
              bytes: 21_000,
              contentType: 'image/webp',
              width: 256,
              height: 256,
            },
          })),
          failedImages: [],
          manifestKey: `${key}/manifest.json`,
          endedAt: new Date(at(3500)).toISOString(),
        }),
      );
      await queue.release(id);
    };
    const started = Date.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: IN_FLIGHT }, async () => {
        while (next < args.generations) await replay(next++);
      }),
    );
    const writeSeconds = (Date.now() - started) / 1000;
    rows.push(await measure(`${args.generations} generations written`, folder));
    const tasksItem = await dynamo.client.send(
      new GetItemCommand({ TableName: LOCAL_TABLE, Key: { id: { S: recentTasksItemId(ACCOUNT) } } }),
    );
    const tasksMapEntries = Object.keys(tasksItem.Item?.tasks?.M ?? {}).length;

    await sleep(args.idle * 1000);
    rows.push(await measure(`idle ${args.idle} s`, folder));
    let lists = 0;
    const listEnd = Date.now() + args.list * 1000;
    while (Date.now() < listEnd) {
      await index.list({ limit: 20 });
      await index.list({ status: 'succeeded', limit: 20 });
      lists += 2;
    }
    rows.push(await measure(`${lists} list queries in ${args.list} s`, folder));
    await sleep(args.idle * 1000);
    rows.push(await measure(`idle ${args.idle} s`, folder));
    await dynamo.close();

    let reopenMs: number | undefined;
    if (folder) {
      const reopening = Date.now();
      dynamo = await startLocalDynamo({ directory: folder });
      reopenMs = Date.now() - reopening;
      rows.push(await measure(`reopened (${reopenMs} ms)`, folder));
      await dynamo.close();
    }

    const start = rows[0] as Row;
    const idleGrowth =
      Math.max(...rows.filter((row) => row.step.startsWith('idle')).map((row) => row.rssMib)) - start.rssMib;
    const maxFolder = Math.max(...rows.map((row) => row.folderMib ?? 0));
    const met = maxFolder <= MAX_FOLDER_MIB && idleGrowth <= MAX_IDLE_RSS_GROWTH_MIB;
    const listsPerSecond = args.list > 0 ? round(lists / args.list, 0) : 0;
    if (args.json) {
      console.log(
        JSON.stringify({
          generations: args.generations,
          writeSeconds: round(writeSeconds, 1),
          listsPerSecond,
          tasksMapEntries,
          reopenMs,
          rows,
          met,
        }),
      );
    } else {
      console.log(
        `bench:dynamo-growth: ${args.generations} generations in ${round(writeSeconds, 1)} s (${IN_FLIGHT} at a time), ` +
          `recent-tasks map ${tasksMapEntries} entries, ${listsPerSecond} list queries/s`,
      );
      console.log(
        markdownTable(
          ['step', 'folder MiB', 'RSS MiB', 'anon MiB', 'file MiB', 'JS heap MiB'],
          rows.map((row) => [
            row.step,
            row.folderMib ?? '—',
            row.rssMib,
            row.anonMib ?? '—',
            row.fileMib ?? '—',
            row.heapMib,
          ]),
        ),
      );
      const folderTarget = folder ? `folder ≤ ${MAX_FOLDER_MIB} MiB (max ${maxFolder}), ` : '';
      console.log(
        `targets: ${folderTarget}idle RSS ≤ start + ${MAX_IDLE_RSS_GROWTH_MIB} MiB (${idleGrowth >= 0 ? '+' : ''}${idleGrowth}): ${met ? 'met' : 'MISSED'}`,
      );
    }
    return met ? 0 : 1;
  } finally {
    await rm(parent, { recursive: true, force: true });
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    console.error(error instanceof z.ZodError ? z.prettifyError(error) : error);
    process.exitCode = 1;
  },
);
