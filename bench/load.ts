/**
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
import { runApiLoad } from './lib/load-api.js';
import { loadRequests, loadShortfalls, mib, runLoad, startLoadRig } from './lib/load-rig.js';

const argsSchema = z.object({
  n: z.coerce
    .number({ error: '--n must be a number' })
    .int('--n must be a whole number')
    .positive('--n must be at least 1')
    .default(1000),
  json: z.boolean().default(false),
  'via-api': z.boolean().default(false),
  'emulator-speed': z.coerce.number().positive('--emulator-speed must be positive').default(20),
  idle: z.coerce.number().nonnegative('--idle must be at least 0').default(30),
});

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      n: { type: 'string' },
      json: { type: 'boolean' },
      'via-api': { type: 'boolean' },
      'emulator-speed': { type: 'string' },
      idle: { type: 'string' },
    },
    strict: true,
  });
  const args = argsSchema.parse(values);
  if (args['via-api']) {
    const summary = await runApiLoad({
      n: args.n,
      emulatorSpeed: args['emulator-speed'],
      idleSeconds: args.idle,
      progress: (text) => args.json || console.error(`bench:load --via-api: ${text}`),
    });
    console.log(args.json ? JSON.stringify(summary) : summary);
    return summary.succeeded === summary.generations && summary.tasks === summary.generations ? 0 : 1;
  }
  const rig = await startLoadRig();
  try {
    const run = await runLoad(rig, loadRequests(args.n));
    const shortfalls = await loadShortfalls(rig, run);
    const succeeded = run.outcomes.filter((outcome) => outcome.status === 'SUCCEEDED').length;
    const { counts } = rig.emulator.control;
    const summary = {
      generations: args.n,
      succeeded,
      failed: args.n - succeeded,
      wallSeconds: Math.round(run.wallSeconds * 10) / 10,
      peakRssMiB: mib(run.peakRss),
    };
    if (args.json) {
      console.log(JSON.stringify(summary));
    } else {
      const images = run.requests.reduce((sum, request) => sum + request.n, 0);
      console.log(
        [
          `bench:load: ${args.n} generations (${images} images of 512*512) started at once`,
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
