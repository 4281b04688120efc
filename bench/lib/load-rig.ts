import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ListObjectsCommand, type S3Client } from '@aws-sdk/client-s3';
import { AdjustableClock } from '../../functions/shared/clock.js';
import type { Logger } from '../../functions/shared/logger.js';
import { emulatorRunTimeModel } from '../../local/dashscope-emulator/run-time.js';
import {
  emulatorEndpoint,
  type RunningEmulator,
  startEmulator,
} from '../../local/dashscope-emulator/server.js';
import { ensureTable, type LocalDynamo, startLocalDynamo } from '../../local/dynamodb.js';
import {
  createLocalRunner,
  type ExecutionOutcome,
  generationsTableDefinition,
  LOCAL_TABLE,
  type LocalRunner,
} from '../../local/runner.js';
import { type LocalS3, startLocalS3 } from '../../local/s3.js';

/**
 * The load rig, shared by `npm run bench:load` and test/faults/load.test.ts: the DashScope
 * emulator with the account's real limits (one task running, 2 submits/s, 20 task queries/s),
 * s3rver in a temporary folder, dynalite holding the generations table (so admission runs on the
 * DynamoDB adapter, as on AWS), and the local runner over the synthesized workflow in virtual time.
 */
export interface LoadRig {
  readonly clock: AdjustableClock;
  readonly emulator: RunningEmulator;
  readonly s3: LocalS3;
  readonly dynamo: LocalDynamo;
  readonly runner: LocalRunner;
  close(): Promise<void>;
}

/** Starts the {@link LoadRig}; `logger` gets every function's lines. @default silent */
export async function startLoadRig(options: { logger?: Logger } = {}): Promise<LoadRig> {
  const dir = await mkdtemp(path.join(tmpdir(), 'load-'));
  const s3 = await startLocalS3({ directory: dir });
  const dynamo = await startLocalDynamo();
  const clock = new AdjustableClock();
  const emulator = await startEmulator({ clock });
  const runner = createLocalRunner({
    dashscope: { ...emulatorEndpoint(emulator), runTimeModel: emulatorRunTimeModel(1) },
    s3: { client: s3.client, bucket: s3.bucket },
    index: { client: dynamo.client, table: LOCAL_TABLE },
    virtualWaits: clock,
    logger: options.logger,
  });
  await ensureTable(dynamo.client, LOCAL_TABLE, generationsTableDefinition(runner.template));
  return {
    clock,
    emulator,
    s3,
    dynamo,
    runner,
    async close() {
      await emulator.close();
      await s3.close();
      await dynamo.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** One load request: 1–4 images of 512*512, a distinct prompt and seed each. */
export interface LoadRequest {
  readonly prompt: string;
  readonly n: number;
  readonly size: string;
  readonly seed: number;
}

/** `count` requests, n cycling through 1, 2, 3, 4. */
export function loadRequests(count: number): LoadRequest[] {
  return Array.from({ length: count }, (_, i) => ({
    prompt: `load case generation ${i}`,
    n: 1 + (i % 4),
    size: '512*512',
    seed: 10 * i,
  }));
}

/** What one load run did. */
export interface LoadRun {
  readonly requests: readonly LoadRequest[];
  readonly outcomes: readonly ExecutionOutcome[];
  readonly wallSeconds: number;
  /** DashScope time the run spanned, in the rig's virtual clock. */
  readonly virtualSeconds: number;
  /** The highest resident set sampled every 50 ms while running, bytes. */
  readonly peakRss: number;
  /** The process's resident-set high-water mark at the end, bytes (includes start-up). */
  readonly highWaterRss: number;
}

/** Starts every request at once (`load-<i>`) and waits for all of them to end. */
export async function runLoad(rig: LoadRig, requests: readonly LoadRequest[]): Promise<LoadRun> {
  const memory = sampleRss();
  const wallStart = performance.now();
  const virtualStart = rig.clock.now();
  const outcomes = await Promise.all(requests.map((request, i) => rig.runner.run(`load-${i}`, request)));
  const wallSeconds = (performance.now() - wallStart) / 1000;
  const virtualSeconds = (rig.clock.now() - virtualStart) / 1000;
  const peak = memory.stop();
  return {
    requests,
    outcomes,
    wallSeconds,
    virtualSeconds,
    peakRss: peak.sampled,
    highWaterRss: peak.highWater,
  };
}

/**
 * The load run's shortfalls, empty when it is whole: each request's execution succeeded with a
 * complete result of `n` images, and the bucket holds its manifest and exactly `n` image objects.
 */
export async function loadShortfalls(rig: LoadRig, run: LoadRun): Promise<string[]> {
  const problems: string[] = [];
  const stored = await keysByGeneration(rig.s3.client, rig.s3.bucket);
  for (const [i, request] of run.requests.entries()) {
    const outcome = run.outcomes[i];
    const id = `load-${i}`;
    if (outcome?.status !== 'SUCCEEDED') {
      problems.push(
        `${id}: ${outcome?.status === 'FAILED' ? `${outcome.error}: ${outcome.cause}` : 'no outcome'}`,
      );
      continue;
    }
    const { result } = outcome.output;
    if (result.status !== 'complete' || result.images.length !== request.n)
      problems.push(`${id}: result ${result.status} with ${result.images.length} of ${request.n} images`);
    const keys = stored.get(id) ?? [];
    const images = keys.filter((key) => /\/\d+\.png$/.test(key)).length;
    if (!keys.some((key) => key.endsWith('/manifest.json')) || images !== request.n)
      problems.push(
        `${id}: bucket holds ${images} of ${request.n} images${keys.length ? '' : ', no manifest'}`,
      );
  }
  return problems;
}

/**
 * The bucket's keys under `generations/`, by generation id. Lists with ListObjects (version 1,
 * paged by `Marker`): s3rver 3.7.1 ciphers ListObjectsV2's continuation token with DES, which
 * Node's OpenSSL 3 no longer offers, so a V2 listing of more than 1000 keys answers InternalError.
 */
async function keysByGeneration(s3: S3Client, bucket: string): Promise<Map<string, string[]>> {
  const byId = new Map<string, string[]>();
  let after: string | undefined;
  for (;;) {
    const page = await s3.send(
      new ListObjectsCommand({ Bucket: bucket, Prefix: 'generations/', Marker: after }),
    );
    const keys = (page.Contents ?? []).flatMap(({ Key: key }) => (key ? [key] : []));
    for (const key of keys) {
      const id = key.split('/')[1];
      if (id) byId.set(id, [...(byId.get(id) ?? []), key]);
    }
    if (!page.IsTruncated || keys.length === 0) return byId;
    after = keys.at(-1);
  }
}

/** Samples the resident set every 50 ms; `stop` returns the highest sample and the process's high-water mark. */
function sampleRss() {
  let sampled = process.memoryUsage.rss();
  const timer = setInterval(() => {
    sampled = Math.max(sampled, process.memoryUsage.rss());
  }, 50);
  return {
    stop() {
      clearInterval(timer);
      sampled = Math.max(sampled, process.memoryUsage.rss());
      return { sampled, highWater: process.resourceUsage().maxRSS * 1024 };
    },
  };
}

/** Bytes as whole MiB. */
export const mib = (bytes: number): number => Math.round(bytes / 1024 / 1024);
