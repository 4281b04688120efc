import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { waitFor } from './wait-for.js';

const PROJECT_ROOT = path.join(import.meta.dirname, '..', '..');

/** Where a background `cdk synth` writes: the cloud assembly, its log and how it ended. */
export interface CdkSynthPaths {
  readonly outdir: string;
  readonly log: string;
  readonly exit: string;
}

export function cdkSynthPaths(dir: string): CdkSynthPaths {
  return {
    outdir: path.join(dir, 'cdk.out'),
    log: path.join(dir, 'synth.log'),
    exit: path.join(dir, 'exit.json'),
  };
}

/**
 * Starts a real `npx cdk synth` (bundling, cdk-nag and CDK's built-in CloudFormation validation,
 * as `cdk deploy` runs it) into `dir` and returns at once. The global setup starts it for the
 * infra project, so its ~17 s (about 25 s of CPU) run alongside the other tests instead of in
 * front of the infra files; test/infra/synth.test.ts waits for it with {@link cdkSynthOutput}.
 */
export function startCdkSynth(dir: string): ChildProcess {
  const paths = cdkSynthPaths(dir);
  mkdirSync(dir, { recursive: true });
  const log = openSync(paths.log, 'w');
  const child = spawn('npx', ['cdk', 'synth', '--quiet', '--output', paths.outdir], {
    cwd: PROJECT_ROOT,
    // The suite turns CDK's validation off for its in-process syntheses (vitest.config.ts).
    env: { ...process.env, CDK_VALIDATION: 'true' },
    stdio: ['ignore', log, log],
    // Its own process group, so stopping it stops npx's children (the CDK app, esbuild, npm) too.
    detached: true,
  });
  child.on('exit', (code, signal) => writeFileSync(paths.exit, JSON.stringify({ code, signal })));
  child.on('error', (error) =>
    writeFileSync(paths.exit, JSON.stringify({ code: null, error: error.message })),
  );
  return child;
}

/**
 * Stops a `cdk synth` still running (a run that ends before it is needed): its whole process
 * group, and waits for it to end, so its folder can be removed (and nothing writes there after).
 */
export async function stopCdkSynth(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  // Its end is no longer reported: the folder that would hold exit.json is about to go.
  child.removeAllListeners('exit');
  const ended = once(child, 'exit');
  const signal = (name: NodeJS.Signals) => {
    try {
      process.kill(-(child.pid as number), name);
      return true;
    } catch {
      return false; // Already gone.
    }
  };
  if (!signal('SIGTERM')) return;
  // A group that ignores SIGTERM is killed after a few seconds, so the teardown cannot hang.
  const stopped = await Promise.race([ended.then(() => true), sleep(5000).then(() => false)]);
  if (!stopped && signal('SIGKILL')) await ended;
}

/**
 * The cloud assembly folder of the `cdk synth` started in `dir`, once it has ended.
 * @throws naming the end of its output when it failed.
 */
export async function cdkSynthOutput(dir: string): Promise<string> {
  const paths = cdkSynthPaths(dir);
  // Under the hooks' 300 s: a synth that never ends is named, not left to the hook's timeout.
  await waitFor(() => existsSync(paths.exit), {
    what: `the background \`cdk synth\` to end (${paths.exit}; its output in ${paths.log})`,
    timeoutMs: 280_000,
  });
  const ended = JSON.parse(readFileSync(paths.exit, 'utf8')) as { code: number | null };
  if (ended.code !== 0) {
    const output = readFileSync(paths.log, 'utf8').trim().split('\n').slice(-20).join('\n');
    throw new Error(`cdk synth failed (${readFileSync(paths.exit, 'utf8')}):\n${output}`);
  }
  return paths.outdir;
}
