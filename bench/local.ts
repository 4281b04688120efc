/**
 * `npm run bench:local [-- --json]`: how fast the local loop starts and ends.
 *
 * Runs `npm run generate -- "<prompt>"` against the DashScope emulator (DASHSCOPE_API_KEY cleared)
 * RUNS times in turn, after one warm-up run that fills the synth cache when the stack's sources
 * changed since the last run. For each run:
 * - startup: from the spawn of `npm run generate` (npm's own start included) to the first progress
 *   line on its stderr, which generate prints when the first Submit invocation returns its task
 *   state: the Submit invocation plus one round trip to the in-process emulator (a few ms);
 * - total: from the spawn to the process's exit (the images copied, the servers closed).
 * Prints the medians; with --json, one JSON document `{startupMs, totalMs, …}`.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { quantile } from './lib/random.js';
import { markdownTable, round } from './lib/table.js';

const RUNS = 5;
const PROMPT = 'a lighthouse at dusk, oil painting';
/** generate's progress line, e.g. `[   0.0s] queued · polls 0 · next poll in 7s`. */
const PROGRESS_LINE = /^\[\s*\d+\.\d+s\] /m;
const PROJECT_ROOT = path.join(import.meta.dirname, '..');

export interface LocalRun {
  readonly startupMs: number;
  readonly totalMs: number;
}

/** Runs `npm run generate` once and times it; fails loudly if it fails or prints no progress. */
function timeGenerate(outDir: string): Promise<LocalRun> {
  return new Promise((resolve, reject) => {
    const launched = performance.now();
    let startupMs: number | undefined;
    let stderr = '';
    const child = spawn('npm', ['run', '--silent', 'generate', '--', PROMPT, '--out', outDir], {
      cwd: PROJECT_ROOT,
      env: { ...process.env, DASHSCOPE_API_KEY: '' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      stderr += chunk;
      if (startupMs === undefined && PROGRESS_LINE.test(stderr)) startupMs = performance.now() - launched;
    });
    child.on('error', reject);
    child.on('close', (code) => {
      const totalMs = performance.now() - launched;
      if (code !== 0) reject(new Error(`npm run generate exited with ${code}:\n${stderr}`));
      else if (startupMs === undefined) reject(new Error(`npm run generate printed no progress:\n${stderr}`));
      else resolve({ startupMs, totalMs });
    });
  });
}

async function main(): Promise<void> {
  const json = process.argv.includes('--json');
  const outDir = await mkdtemp(path.join(tmpdir(), 'sd35-bench-local-'));
  try {
    const loadBefore = loadavg();
    const warmUp = await timeGenerate(outDir);
    const runs: LocalRun[] = [];
    for (let run = 0; run < RUNS; run++) runs.push(await timeGenerate(outDir));
    const median = (pick: (run: LocalRun) => number) =>
      round(
        quantile(
          runs.map(pick).sort((a, b) => a - b),
          0.5,
        ),
        0,
      );
    const result = {
      startupMs: median((run) => run.startupMs),
      totalMs: median((run) => run.totalMs),
      runs: runs.map((run) => ({ startupMs: round(run.startupMs, 0), totalMs: round(run.totalMs, 0) })),
      warmUp: { startupMs: round(warmUp.startupMs, 0), totalMs: round(warmUp.totalMs, 0) },
      loadAverage: { before: loadBefore.map((l) => round(l, 2)), after: loadavg().map((l) => round(l, 2)) },
      cores: cpus().length,
      measured:
        'startup: spawn of `npm run generate` → its first progress line (printed when the first Submit ' +
        'invocation returns, one emulator round trip after it starts); total: spawn → exit; ' +
        `median of ${RUNS} runs after one warm-up run`,
    };
    if (json) {
      process.stdout.write(`${JSON.stringify(result)}\n`);
      return;
    }
    process.stdout.write(
      `${[
        `\`npm run generate\` against the emulator, ${RUNS} runs after a warm-up, node ${process.version}, ${result.cores} cores, load average ${result.loadAverage.before.join(' ')} before, ${result.loadAverage.after.join(' ')} after.`,
        `Startup = ${result.measured.split('; total')[0]?.replace('startup: ', '')}.`,
        '',
        markdownTable(
          ['run', 'startup ms', 'total ms'],
          [
            ['warm-up', result.warmUp.startupMs, result.warmUp.totalMs],
            ...result.runs.map((run, index) => [String(index + 1), run.startupMs, run.totalMs]),
            ['**median**', result.startupMs, result.totalMs],
          ],
        ),
      ].join('\n')}\n`,
    );
  } finally {
    await rm(outDir, { recursive: true, force: true });
  }
}

await main();
