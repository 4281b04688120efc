/**
 * Two commands around Persist's arm64 bundle (sharp's linux-arm64 addon and libvips):
 *
 * - `npm run cache:arm64` (`--fill-cache`; also the project's `postinstall`, so `npm ci` runs it):
 *   puts the lock file's linux-arm64 packages (`@img/sharp-linux-arm64`,
 *   `@img/sharp-libvips-linux-arm64`) in the npm cache. `npm ci` on an x64 host neither installs
 *   nor downloads them, and the bundling's `npm ci` for linux-arm64 reads the cache: offline, it
 *   would leave them out. Needs the registry once; as `postinstall` a failure is only a warning
 *   (an offline `npm ci` still works; the next synth says what is missing). It also puts Node 24
 *   for this machine in the cache, which test/infra/deployed-bundles.test.ts runs the bundles on
 *   (local/lambda-node.ts).
 * - `npm run synth:check [-- --keep] [-- --ignore-scripts]`: what a fresh machine does. It copies
 *   this checkout (the files git tracks or would track, edits included) to a temporary folder,
 *   runs `npm ci` there with an empty npm cache of its own, then `cdk synth` offline
 *   (`npm_config_offline=true`) with that cache, then reads Persist's bundle
 *   (infra/bundle-check.ts). Exit 0 with the arm64 files found; non-zero with what is missing and
 *   the fix. `--ignore-scripts` passes that to `npm ci` (no `postinstall`), to see the failure;
 *   `--keep` keeps the folder. About a minute: `npm ci` downloads everything, the synth bundles
 *   every function. Not part of `npm test`.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import {
  FILL_CACHE_COMMAND,
  functionBundles,
  LAMBDA_PLATFORM,
  lockedPlatformPackages,
  sharpArm64Report,
  sharpInBundle,
} from '../infra/bundle-check.js';
import { cacheLambdaNodes } from './lambda-node.js';

const ROOT = path.join(import.meta.dirname, '..');

/** `npm cache add` of the lock file's packages for the Lambda's platform; false when npm failed. */
function fillCache(): boolean {
  const lock = JSON.parse(readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8'));
  const specs = lockedPlatformPackages(lock).map(({ name, version }) => `${name}@${version}`);
  if (specs.length === 0) return true;
  const platform = `${LAMBDA_PLATFORM.os}-${LAMBDA_PLATFORM.cpu} (${LAMBDA_PLATFORM.libc})`;
  console.log(`npm cache add ${specs.join(' ')}: the Lambdas' ${platform} packages, for offline synths`);
  // Cache first: once they are there, this needs no network.
  const added = spawnSync('npm', ['cache', 'add', '--prefer-offline', ...specs], {
    cwd: ROOT,
    stdio: 'inherit',
  });
  return added.status === 0;
}

/** Runs a command in `cwd`, its output shown; returns its wall time in seconds; throws when it fails. */
function timed(what: string, command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): number {
  console.log(`\n$ ${what}`);
  const start = performance.now();
  const run = spawnSync(command, args, { cwd, env, stdio: 'inherit' });
  const seconds = (performance.now() - start) / 1000;
  if (run.status !== 0) {
    throw new Error(`${what} failed (exit ${run.status ?? run.signal}) after ${seconds.toFixed(1)} s`);
  }
  console.log(`(${seconds.toFixed(1)} s)`);
  return seconds;
}

/** Copies the files git tracks or would track (ignored ones left out, deleted ones skipped) to `to`. */
function copyCheckout(to: string): void {
  const files = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], {
    cwd: ROOT,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  })
    .split('\0')
    .filter((file) => file && existsSync(path.join(ROOT, file)));
  for (const file of files) {
    mkdirSync(path.dirname(path.join(to, file)), { recursive: true });
    cpSync(path.join(ROOT, file), path.join(to, file));
  }
}

async function check(options: { keep: boolean; ignoreScripts: boolean }): Promise<boolean> {
  const work = mkdtempSync(path.join(tmpdir(), 'synth-check-'));
  const project = path.join(work, 'project');
  const cache = path.join(work, 'npm-cache');
  const outdir = path.join(work, 'cdk.out');
  mkdirSync(cache);
  const env = { ...process.env, npm_config_cache: cache };
  try {
    copyCheckout(project);
    console.log(`A fresh checkout in ${project}, an empty npm cache in ${cache}`);
    timed(
      `npm ci${options.ignoreScripts ? ' --ignore-scripts' : ''} (online, empty cache)`,
      'npm',
      ['ci', '--no-audit', '--no-fund', ...(options.ignoreScripts ? ['--ignore-scripts'] : [])],
      project,
      env,
    );
    try {
      timed(
        'npx cdk synth --quiet (offline: npm_config_offline=true)',
        'npx',
        ['cdk', 'synth', '--quiet', '--no-notices', '--output', outdir],
        project,
        { ...env, npm_config_offline: 'true' },
      );
    } catch (error) {
      console.error(
        `\n${(error as Error).message}: the offline synth did not complete (its output is above).`,
      );
      console.error(
        `Fix: with the registry reachable, run \`${FILL_CACHE_COMMAND}\` (or \`npm ci\`), then synthesize again.`,
      );
      return false;
    }
    const { STACK_ID } = await import('../infra/app.js');
    const persist = [...functionBundles(outdir, STACK_ID)].find(([id]) =>
      id.startsWith('FunctionsPersist'),
    )?.[1];
    if (!persist) {
      console.error('The synthesized template has no Persist function with a bundled asset.');
      return false;
    }
    const report = sharpArm64Report(persist, "Persist's bundle");
    if (report) {
      console.error(`\n${report}`);
      return false;
    }
    const sharp = sharpInBundle(persist);
    console.log(`\nPersist's bundle (${path.basename(persist)}) is complete for linux-arm64:`);
    for (const native of [sharp.addon, sharp.libvips]) {
      console.log(`  ${path.relative(persist, native.file)}: ELF ${native.bits}-bit AArch64, glibc`);
    }
    return true;
  } finally {
    if (options.keep) console.log(`Kept ${work}`);
    else rmSync(work, { recursive: true, force: true });
  }
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      'fill-cache': { type: 'boolean', default: false },
      keep: { type: 'boolean', default: false },
      'ignore-scripts': { type: 'boolean', default: false },
    },
  });
  if (values['fill-cache']) {
    // Node 24 for test/infra/deployed-bundles.test.ts (local/lambda-node.ts); a miss only warns.
    cacheLambdaNodes();
    if (fillCache()) return 0;
    const asPostinstall = process.env.npm_lifecycle_event === 'postinstall';
    console.error(
      `${asPostinstall ? 'Warning: ' : ''}the Lambdas' linux-arm64 packages are not in the npm cache (is the registry reachable?): ` +
        `an offline synth fails until \`${FILL_CACHE_COMMAND}\` succeeds.`,
    );
    return asPostinstall ? 0 : 1;
  }
  return (await check({ keep: values.keep, ignoreScripts: values['ignore-scripts'] })) ? 0 : 1;
}

process.exitCode = await main();
