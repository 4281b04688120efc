/**
 * `npm run bench:cold [-- --json]`: each Lambda bundle's size and its module-init time.
 *
 * Each handler is bundled with esbuild using the very options the GenerationFunction construct
 * gives NodejsFunction (`LAMBDA_BUNDLING`), into a temporary directory. Module init is the time a
 * fresh `node` process takes to import the bundle (and find its `handler`), minus the time of an
 * empty `node` start, median of several runs taken in turns.
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import { type BuildOptions, build } from 'esbuild';
import { PERSIST_NODE_MODULES } from '../infra/constructs/functions.js';
import { LAMBDA_BUNDLING } from '../infra/constructs/generation-function.js';
import { quantile } from './lib/random.js';
import { markdownTable, round } from './lib/table.js';

const FUNCTIONS = ['submit', 'poll', 'persist'] as const;
const RUNS = 9;
/** The targets for Submit and Poll. */
const MAX_BUNDLE_KB = 250;
const MAX_INIT_MS = 100;

export interface ColdRow {
  readonly function: string;
  readonly bundleKb: number;
  readonly sourceMapKb: number;
  readonly initMs: number;
  readonly initMsMin: number;
  readonly initMsMax: number;
}

/** NodejsFunction's bundling props as esbuild options (what the construct's esbuild call gets). */
function esbuildOptions(entry: string, outfile: string): BuildOptions {
  return {
    entryPoints: [entry],
    outfile,
    bundle: true,
    platform: 'node',
    format: LAMBDA_BUNDLING.format === OutputFormat.ESM ? 'esm' : 'cjs',
    target: LAMBDA_BUNDLING.target,
    minify: LAMBDA_BUNDLING.minify,
    sourcemap: LAMBDA_BUNDLING.sourceMap,
    // Persist's sharp is installed beside its bundle, not bundled; it loads on first thumbnail, after init.
    external: [...LAMBDA_BUNDLING.externalModules, ...PERSIST_NODE_MODULES],
    mainFields: [...LAMBDA_BUNDLING.mainFields],
    banner: { js: LAMBDA_BUNDLING.banner },
    logLevel: 'warning',
  };
}

/** What the construct sets on every function that changes how Node loads a module. */
const LAMBDA_NODE_ENV = { NODE_OPTIONS: '--enable-source-maps' };

/** Wall time of one `node` run, in ms; fails loudly if the process fails. */
function timeNode(args: string[]): number {
  const started = process.hrtime.bigint();
  const result = spawnSync(process.execPath, args, {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: LAMBDA_NODE_ENV,
  });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  if (result.status !== 0) throw new Error(`node ${args.join(' ')} failed: ${result.stderr.toString()}`);
  return ms;
}

async function main(): Promise<void> {
  const json = process.argv.includes('--json');
  const root = path.join(import.meta.dirname, '..');
  const dir = await mkdtemp(path.join(tmpdir(), 'bench-cold-'));
  const rows: ColdRow[] = [];
  try {
    const bundles = [];
    for (const fn of FUNCTIONS) {
      const outfile = path.join(dir, fn, 'index.mjs');
      await build(esbuildOptions(path.join(root, 'functions', fn, 'handler.ts'), outfile));
      bundles.push({ fn, outfile });
    }
    const baselineArgs = ['-e', ''];
    const importArgs = (outfile: string) => [
      '-e',
      `import(${JSON.stringify(pathToFileURL(outfile).href)}).then((m) => { if (typeof m.handler !== 'function') process.exit(3); })`,
    ];
    // Warm the file cache, then take runs in turns so drift weighs on every column alike.
    timeNode(baselineArgs);
    for (const { outfile } of bundles) timeNode(importArgs(outfile));
    const baseline: number[] = [];
    const times = new Map<string, number[]>(bundles.map(({ fn }) => [fn, []]));
    for (let i = 0; i < RUNS; i++) {
      baseline.push(timeNode(baselineArgs));
      for (const { fn, outfile } of bundles) times.get(fn)?.push(timeNode(importArgs(outfile)));
    }
    const baseMs = quantile(
      baseline.sort((a, b) => a - b),
      0.5,
    );
    for (const { fn, outfile } of bundles) {
      const inits = (times.get(fn) ?? []).map((ms) => ms - baseMs).sort((a, b) => a - b);
      rows.push({
        function: fn,
        bundleKb: round((await stat(outfile)).size / 1000, 1),
        sourceMapKb: round((await stat(`${outfile}.map`)).size / 1000, 1),
        initMs: round(quantile(inits, 0.5), 1),
        initMsMin: round(inits[0] ?? Number.NaN, 1),
        initMsMax: round(inits.at(-1) ?? Number.NaN, 1),
      });
    }
    if (json) {
      process.stdout.write(
        `${JSON.stringify({ baselineNodeStartMs: round(baseMs, 1), functions: rows }, null, 2)}\n`,
      );
      return;
    }
    const lines = [
      '## bench:cold',
      '',
      `Bundles built with LAMBDA_BUNDLING (${LAMBDA_BUNDLING.format}, ${LAMBDA_BUNDLING.target}, minified, ` +
        `external: ${LAMBDA_BUNDLING.externalModules.join(', ')}). Module init = import of the bundle in a fresh ` +
        `node ${process.version} (NODE_OPTIONS=${LAMBDA_NODE_ENV.NODE_OPTIONS}, as on Lambda) minus an empty node ` +
        `start (${round(baseMs, 1)} ms), median of ${RUNS} runs.`,
      '',
      markdownTable(
        ['function', 'bundle KB', 'source map KB', 'module init ms', 'min ms', 'max ms'],
        rows.map((row) => [
          row.function,
          row.bundleKb,
          row.sourceMapKb,
          row.initMs,
          row.initMsMin,
          row.initMsMax,
        ]),
      ),
      '',
      'Targets (submit and poll):',
      '',
    ];
    for (const row of rows.filter((each) => each.function !== 'persist')) {
      const sizeOk = row.bundleKb <= MAX_BUNDLE_KB;
      const initOk = row.initMs <= MAX_INIT_MS;
      lines.push(
        `- ${sizeOk ? 'met' : 'MISSED'}: ${row.function}: ${row.bundleKb} KB (target ≤ ${MAX_BUNDLE_KB} KB)`,
        `- ${initOk ? 'met' : 'MISSED'}: ${row.function}: module init ${row.initMs} ms (target ≤ ${MAX_INIT_MS} ms)`,
      );
    }
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
