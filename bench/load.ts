/**
 * `npm run bench:load -- --via-api --eta [--n 500] [--emulator-speed 4] [--json]`: how right the
 * start estimate is under a backlog (issue 23, item 8): N generations (default 500) POSTed at once
 * in the batch lane through a child `npm start`, behind the emulator slowed to `--emulator-speed`
 * (default 4, npm start's own); the last one's `queue.estimatedStartAt` read right after its 202
 * against its task's actual start (`dashscope.scheduledTime`): `{etaError, estimatedStartAt,
 * actualStartAt, readAt, position, waitedSeconds, postSeconds, later}`; exits 1 when `etaError`
 * exceeds 0.2. Real time: about N × 1 s.
 *
 * `npm run bench:load -- --via-api [--n 1000] [--json]`: the same burst through a child `npm start`
 * over HTTP, in real time (at DashScope's 2 submits/s, about 9 minutes for 1,000), measuring the
 * server process: `{generations, succeeded, failed, wallSeconds, peakRssMiB, idleRssMiB,
 * startRssMiB, dynamodbDiskMiB, tasks}` (bench/lib/load-api.ts).
 *
 * `npm run bench:load [-- --n 1000] [--json]`: N generations (default 1000) started at once
 * through the local runner and the synthesized workflow, against the DashScope emulator with the
 * account's real limits, in virtual time, with s3rver and dynalite (admission on the DynamoDB
 * adapter). Every generation must succeed with every image stored; exits 1 otherwise.
 * Prints a summary; with --json, one JSON document
 * `{generations, succeeded, failed, wallSeconds, peakRssMiB}`.
 */
import { parseArgs } from 'node:util';
import * as z from 'zod';
import { runApiEta, runApiLoad } from './lib/load-api.js';
import { loadRequests, loadShortfalls, mib, runLoad, startLoadRig } from './lib/load-rig.js';

const argsSchema = z.object({
  n: z.coerce
    .number({ error: '--n must be a number' })
    .int('--n must be a whole number')
    .positive('--n must be at least 1')
    .optional(),
  json: z.boolean().default(false),
  'via-api': z.boolean().default(false),
  eta: z.boolean().default(false),
  'emulator-speed': z.coerce.number().positive('--emulator-speed must be positive').optional(),
  idle: z.coerce.number().nonnegative('--idle must be at least 0').default(30),
});

/** The start estimate's error the `--eta` run must stay within (issue 23, item 8). */
const ETA_TARGET = 0.2;

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      n: { type: 'string' },
      json: { type: 'boolean' },
      'via-api': { type: 'boolean' },
      eta: { type: 'boolean' },
      'emulator-speed': { type: 'string' },
      idle: { type: 'string' },
    },
    strict: true,
  });
  const args = argsSchema.parse(values);
  if (args.eta && !args['via-api']) throw new Error('--eta runs through the API: add --via-api');
  if (args.eta) {
    const summary = await runApiEta({
      n: args.n ?? 500,
      emulatorSpeed: args['emulator-speed'] ?? 4,
      progress: (text) => args.json || console.error(`bench:load --via-api --eta: ${text}`),
    });
    console.log(args.json ? JSON.stringify(summary) : summary);
    return summary.etaError <= ETA_TARGET ? 0 : 1;
  }
  if (args['via-api']) {
    const summary = await runApiLoad({
      n: args.n ?? 1000,
      emulatorSpeed: args['emulator-speed'] ?? 20,
      idleSeconds: args.idle,
      progress: (text) => args.json || console.error(`bench:load --via-api: ${text}`),
    });
    console.log(args.json ? JSON.stringify(summary) : summary);
    return summary.succeeded === summary.generations && summary.tasks === summary.generations ? 0 : 1;
  }
  const n = args.n ?? 1000;
  const rig = await startLoadRig();
  try {
    const run = await runLoad(rig, loadRequests(n));
    const shortfalls = await loadShortfalls(rig, run);
    const succeeded = run.outcomes.filter((outcome) => outcome.status === 'SUCCEEDED').length;
    const { counts } = rig.emulator.control;
    const summary = {
      generations: n,
      succeeded,
      failed: n - succeeded,
      wallSeconds: Math.round(run.wallSeconds * 10) / 10,
      peakRssMiB: mib(run.peakRss),
    };
    if (args.json) {
      console.log(JSON.stringify(summary));
    } else {
      const images = run.requests.reduce((sum, request) => sum + request.n, 0);
      console.log(
        [
          `bench:load: ${n} generations (${images} images of 512*512) started at once`,
          `  ${succeeded} succeeded, ${summary.failed} failed, ${shortfalls.length} shortfalls`,
          `  wall time ${summary.wallSeconds} s for ${(run.virtualSeconds / 3600).toFixed(2)} h of DashScope time`,
          `  peak RSS ${summary.peakRssMiB} MiB while running (high-water mark ${mib(run.highWaterRss)} MiB)`,
          `  DashScope: ${rig.emulator.control.tasksCreated} tasks, ${counts.submits} submits, ${counts.queries} task queries, ${counts.throttled} answered 429`,
        ].join('\n'),
      );
    }
    for (const shortfall of shortfalls.slice(0, 10)) console.error(`shortfall: ${shortfall}`);
    return shortfalls.length === 0 ? 0 : 1;
  } finally {
    await rig.close();
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
