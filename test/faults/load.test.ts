import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type LoadRig,
  loadRequests,
  loadShortfalls,
  mib,
  runLoad,
  startLoadRig,
} from '../../bench/lib/load-rig.js';
import { DEFAULT_ACCOUNT, LANES } from '../../functions/shared/admission.js';
import { recordingLogger } from './harness.js';
import { checkBucket, checkNoErrorLogs, type LogLine } from './invariants.js';

/**
 * The load case: 100 generations started at once against the emulator's real account limits
 * (one task running, 2 submits/s, 20 task queries/s), through the local runner in virtual time,
 * admission on the DynamoDB adapter (dynalite). Every one must succeed with every image; it
 * prints the wall time and peak memory. `npm run bench:load` runs the same rig with 1000.
 */
const GENERATIONS = 100;
let rig: LoadRig;
const logs: LogLine[] = [];

beforeAll(async () => {
  rig = await startLoadRig({ logger: recordingLogger(logs) });
  // Synthesizing the stack and starting the servers take minutes when every core is busy.
}, 300_000);

afterEach(async () => {
  await rig.runner.abortAll();
});

afterAll(async () => {
  await rig?.close();
});

describe('load', () => {
  it(`runs ${GENERATIONS} generations submitted at once to success, every image stored`, async () => {
    const run = await runLoad(rig, loadRequests(GENERATIONS));

    expect(await loadShortfalls(rig, run)).toEqual([]);
    expect(await checkBucket(rig.s3.client, rig.s3.bucket)).toBe(GENERATIONS);
    checkNoErrorLogs(logs);
    const { counts } = rig.emulator.control;
    // One task per generation: throttled submits created none, and no answer was lost.
    expect(rig.emulator.control.tasksCreated).toBe(GENERATIONS);
    // Admission paced the burst: two tasks outstanding, submits spaced, so DashScope never had to
    // refuse a call (without admission, this burst met dozens of 429s).
    expect(counts.throttled).toBe(0);
    // Every slot was given back, and nothing waits: the queue in the table is empty.
    expect(await rig.runner.admission.queue.slots(DEFAULT_ACCOUNT)).toEqual([]);
    for (const lane of LANES) expect(await rig.runner.admission.queue.count(lane)).toBe(0);

    const images = run.requests.reduce((sum, request) => sum + request.n, 0);
    console.log(
      [
        `load: ${GENERATIONS} generations, ${images} images of 512*512, all succeeded`,
        `  wall time ${run.wallSeconds.toFixed(1)} s for ${(run.virtualSeconds / 60).toFixed(1)} min of DashScope time`,
        `  peak RSS ${mib(run.peakRss)} MiB while running (process high-water mark ${mib(run.highWaterRss)} MiB)`,
        `  DashScope: ${counts.submits} submits, ${counts.queries} task queries, ${counts.throttled} answered 429`,
      ].join('\n'),
    );
  }, 600_000);
});
