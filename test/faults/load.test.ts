import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdjustableClock } from '../../functions/shared/clock.js';
import { emulatorRunTimeModel } from '../../local/dashscope-emulator/run-time.js';
import { type RunningEmulator, startEmulator } from '../../local/dashscope-emulator/server.js';
import { createLocalRunner, type ExecutionOutcome, type LocalRunner } from '../../local/runner.js';
import { type LocalS3, startLocalS3 } from '../../local/s3.js';
import { recordingLogger } from './harness.js';
import { checkBucket, checkNoErrorLogs, type LogLine } from './invariants.js';

/**
 * The load case: 100 generations started at once against the emulator's real account limits
 * (one task running, 2 submits/s, 20 task queries/s), through the local runner in virtual time.
 * Every one must succeed with every image; it prints the wall time and peak memory.
 */
const GENERATIONS = 100;
let dir: string;
let s3: LocalS3;
let emulator: RunningEmulator;
let clock: AdjustableClock;
let runner: LocalRunner;
const logs: LogLine[] = [];

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'load-'));
  s3 = await startLocalS3({ directory: dir });
  clock = new AdjustableClock();
  emulator = await startEmulator({ clock });
  runner = createLocalRunner({
    dashscope: {
      baseUrl: emulator.url,
      apiKey: emulator.apiKey,
      resultHosts: ['127.0.0.1'],
      allowHttpResults: true,
    },
    s3: { client: s3.client, bucket: s3.bucket },
    virtualWaits: clock,
    generation: { runTimeModel: emulatorRunTimeModel(1) },
    logger: recordingLogger(logs),
  });
});

afterAll(async () => {
  await emulator?.close();
  await s3?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('load', () => {
  it(`runs ${GENERATIONS} generations submitted at once to success, every image stored`, async () => {
    const requests = Array.from({ length: GENERATIONS }, (_, i) => ({
      prompt: `load case generation ${i}`,
      n: 1 + (i % 4),
      size: '512*512',
      seed: 10 * i,
    }));
    const memory = peakRss();
    const wallStart = performance.now();
    const virtualStart = clock.now();

    const outcomes = await Promise.all(requests.map((request, i) => runner.run(`load-${i}`, request)));

    const wallSeconds = (performance.now() - wallStart) / 1000;
    const virtualSeconds = (clock.now() - virtualStart) / 1000;
    const peak = memory.stop();
    const failed = outcomes.filter((outcome) => outcome.status !== 'SUCCEEDED');
    expect(failed, describeFailures(failed)).toEqual([]);
    for (const [i, outcome] of outcomes.entries()) {
      if (outcome.status !== 'SUCCEEDED') continue;
      expect(outcome.output.result.status).toBe('complete');
      expect(outcome.output.result.images).toHaveLength(requests[i]?.n ?? 0);
    }
    const images = requests.reduce((sum, request) => sum + request.n, 0);
    expect(await checkBucket(s3.client, s3.bucket)).toBe(GENERATIONS);
    checkNoErrorLogs(logs);
    const { counts } = emulator.control;
    // One task per generation: throttled submits created none, and no answer was lost.
    expect(emulator.control.tasksCreated).toBe(GENERATIONS);
    // Admission paced the burst: two tasks outstanding, submits spaced, so DashScope never had to
    // refuse a call (without admission, this burst met dozens of 429s).
    expect(counts.throttled).toBe(0);

    console.log(
      [
        `load: ${GENERATIONS} generations, ${images} images of 512*512, all succeeded`,
        `  wall time ${wallSeconds.toFixed(1)} s for ${(virtualSeconds / 60).toFixed(1)} min of DashScope time`,
        `  peak RSS ${mib(peak.sampled)} MiB while running (process high-water mark ${mib(peak.highWater)} MiB)`,
        `  DashScope: ${counts.submits} submits, ${counts.queries} task queries, ${counts.throttled} answered 429`,
      ].join('\n'),
    );
  }, 600_000);
});

/** Samples the resident set every 50 ms; `stop` returns the highest sample and the process's high-water mark. */
function peakRss() {
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

const mib = (bytes: number) => (bytes / 1024 / 1024).toFixed(0);

function describeFailures(failed: ExecutionOutcome[]): string {
  return failed
    .slice(0, 5)
    .map((outcome) => (outcome.status === 'FAILED' ? `${outcome.error}: ${outcome.cause}` : outcome.status))
    .join('\n');
}
