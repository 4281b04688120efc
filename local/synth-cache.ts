import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { z } from 'zod';

/** The environment variable that moves the cache (tests point it at a per-run temporary folder). */
export const SYNTH_CACHE_DIR_ENV = 'SD35_SYNTH_CACHE_DIR';

/** Bumped whenever the cached record's shape or meaning changes, so old entries miss. */
const CACHE_FORMAT = 3;

/**
 * What the template depends on, relative to the project root: the stack's sources, the shared
 * function code they import (all of it: simpler and safer than following imports), each
 * function's environment spec (`functions/<fn>/spec.ts`, which the constructs encode with), the
 * CDK context and the locked dependency versions.
 */
const KEY_INPUTS = { folders: ['infra', 'functions/shared'], files: ['cdk.json', 'package-lock.json'] };

// Loose: the whole template is kept (Outputs, Conditions, Rules…), only what the runner reads is checked.
const cloudFormationTemplateSchema = z.looseObject({
  Resources: z.record(
    z.string(),
    z.looseObject({ Type: z.string(), Properties: z.record(z.string(), z.unknown()).optional() }),
  ),
});

/** A synthesized CloudFormation template, as far as the local runner reads it. */
export interface CloudFormationTemplate {
  readonly Resources: Record<string, { Type: string; Properties?: Record<string, unknown> }>;
}

export const synthesizedStackSchema = z.object({
  stackName: z.string().min(1),
  template: cloudFormationTemplateSchema,
  functionIds: z.object({
    submit: z.string().min(1),
    poll: z.string().min(1),
    persist: z.string().min(1),
    notify: z.string().min(1),
    admit: z.string().min(1),
    dispatch: z.string().min(1),
    api: z.string().min(1),
    trigger: z.string().min(1),
    reconcile: z.string().min(1),
  }),
});

/** What the local runner needs from a synthesis: the stack's name, its template, the functions' logical ids. */
export type SynthesizedStack = z.infer<typeof synthesizedStackSchema>;

const cacheEntrySchema = z.object({
  format: z.literal(CACHE_FORMAT),
  key: z.string(),
  stack: synthesizedStackSchema,
});

/** The synthesis failed, or its output was not a synthesized stack. */
export class SynthesisError extends Error {
  override readonly name = 'SynthesisError';
}

/**
 * The cache key of a synthesis: a SHA-256 over the cache format, every file under `infra/` and
 * `functions/shared/` and every `functions/<fn>/spec.ts` (path and content, in path order), `cdk.json`, `package-lock.json` (a missing
 * one counts as empty) and the configuration overrides (keys sorted, so their order does not matter).
 */
export function synthCacheKey(root: string, generation: unknown = {}): string {
  const hash = createHash('sha256');
  hash.update(`format ${CACHE_FORMAT}\0generation ${canonicalJson(generation)}\0`);
  const files = [
    ...KEY_INPUTS.folders.flatMap((folder) => filesUnder(root, folder)),
    ...functionSpecs(root),
    ...KEY_INPUTS.files,
  ].sort();
  for (const file of files) {
    hash.update(`${file}\0`);
    hash.update(readOrEmpty(path.join(root, file)));
    hash.update('\0');
  }
  return hash.digest('hex');
}

/**
 * The cached stack under `key` in `dir`, or undefined when there is none or it cannot be read or
 * parsed (a corrupt entry is then rebuilt by the caller). Never throws.
 */
export function readSynthCache(dir: string, key: string): SynthesizedStack | undefined {
  try {
    const entry = cacheEntrySchema.safeParse(JSON.parse(readFileSync(entryFile(dir, key), 'utf8')));
    return entry.success && entry.data.key === key ? entry.data.stack : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Stores `stack` under `key` in `dir` (created if missing). Written to a temporary file and renamed
 * into place, so a concurrent reader sees the old entry, none, or the whole new one.
 * @throws the file system's error when the folder cannot be written.
 */
export function writeSynthCache(dir: string, key: string, stack: SynthesizedStack): void {
  mkdirSync(dir, { recursive: true });
  const file = entryFile(dir, key);
  const temporary = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    writeFileSync(temporary, JSON.stringify({ format: CACHE_FORMAT, key, stack }));
    renameSync(temporary, file);
  } finally {
    rmSync(temporary, { force: true });
  }
}

export interface CachedSynthesisOptions {
  /** The cache folder. */
  readonly dir: string;
  /** The project root the key's files are read from. */
  readonly root: string;
  /** The configuration overrides (cdk.json context `generation`). @default {} */
  readonly generation?: Record<string, unknown>;
  /** Synthesizes on a miss. @default {@link synthesizeInChild} */
  readonly synthesize?: (generation: Record<string, unknown>) => SynthesizedStack;
}

/**
 * The synthesized stack for the project's current sources and `generation`: from the cache when
 * its key matches, otherwise synthesized and stored. A cache that cannot be written is not an
 * error: the synthesis is returned anyway.
 * @throws {SynthesisError} when the synthesis fails.
 */
export function cachedSynthesis(options: CachedSynthesisOptions): SynthesizedStack {
  const generation = options.generation ?? {};
  const key = synthCacheKey(options.root, generation);
  const cached = readSynthCache(options.dir, key);
  if (cached) return cached;
  const stack = (options.synthesize ?? synthesizeInChild)(generation);
  storeQuietly(options.dir, key, stack);
  return stack;
}

export interface PrepareSynthCacheOptions {
  /** The cache folder. */
  readonly dir: string;
  /** The project root the keys' files are read from. */
  readonly root: string;
  /** The configurations to have in the cache (cdk.json context `generation` overrides). */
  readonly generations: readonly Record<string, unknown>[];
  /** Synthesizes the missing ones, in order. @default {@link synthesizeAllInChild} */
  readonly synthesizeAll?: (generations: readonly Record<string, unknown>[]) => SynthesizedStack[];
}

/**
 * Puts every configuration of `generations` in the cache: the missing ones (each distinct one
 * once) synthesized by one call, so by one child process that loads aws-cdk-lib once (about 2 s
 * per synthesis in a child of its own, about 0.15 s for each after the first in a shared one).
 * @returns how many it synthesized.
 * @throws {SynthesisError} when the synthesis fails.
 */
export function prepareSynthCache(options: PrepareSynthCacheOptions): number {
  const missing = new Map<string, Record<string, unknown>>();
  for (const generation of options.generations) {
    const key = synthCacheKey(options.root, generation);
    if (!missing.has(key) && !readSynthCache(options.dir, key)) missing.set(key, generation);
  }
  if (missing.size === 0) return 0;
  const stacks = (options.synthesizeAll ?? synthesizeAllInChild)([...missing.values()]);
  if (stacks.length !== missing.size)
    throw new SynthesisError(`asked for ${missing.size} syntheses, got ${stacks.length}`);
  for (const [i, key] of [...missing.keys()].entries())
    storeQuietly(options.dir, key, stacks[i] as SynthesizedStack);
  return missing.size;
}

function storeQuietly(dir: string, key: string, stack: SynthesizedStack): void {
  try {
    writeSynthCache(dir, key, stack);
  } catch {
    // A read-only or full disk costs the next run a synthesis, nothing more.
  }
}

/**
 * Synthesizes in a child process (local/synth.ts under tsx) and waits for it: synchronous, and
 * this process never loads aws-cdk-lib, which takes about a second to import on its own.
 * @throws {SynthesisError} naming the child's error output when it fails or prints no stack.
 */
export function synthesizeInChild(generation: Record<string, unknown>): SynthesizedStack {
  return synthesizeAllInChild([generation])[0] as SynthesizedStack;
}

/**
 * {@link synthesizeInChild} for several configurations, in one child process.
 * @returns a stack per configuration, in their order.
 * @throws {SynthesisError} naming the child's error output when it fails or prints fewer stacks.
 */
export function synthesizeAllInChild(generations: readonly Record<string, unknown>[]): SynthesizedStack[] {
  const script = path.join(import.meta.dirname, 'synth.ts');
  // tsx's ESM hooks only: aws-cdk-lib's CommonJS modules load without its require hook (faster).
  const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx/esm')).href;
  let stdout: string;
  try {
    stdout = execFileSync(process.execPath, ['--import', tsx, script, JSON.stringify(generations)], {
      encoding: 'utf8',
      maxBuffer: 256 * 1024 * 1024,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (error) {
    const stderr = String((error as { stderr?: unknown }).stderr ?? '').trim();
    throw new SynthesisError(`CDK synthesis failed: ${lastLines(stderr) || (error as Error).message}`, {
      cause: error,
    });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(stdout);
  } catch (error) {
    throw new SynthesisError('CDK synthesis printed no JSON on stdout', { cause: error });
  }
  const stacks = z.array(synthesizedStackSchema).length(generations.length).safeParse(parsed);
  if (!stacks.success)
    throw new SynthesisError(`CDK synthesis printed no stack: ${z.prettifyError(stacks.error)}`, {
      cause: stacks.error,
    });
  return stacks.data;
}

function entryFile(dir: string, key: string): string {
  return path.join(dir, `${key}.json`);
}

/** `functions/<fn>/spec.ts` of every function folder that has one, relative to the root. */
function functionSpecs(root: string): string[] {
  let folders: string[];
  try {
    folders = readdirSync(path.join(root, 'functions'));
  } catch {
    return [];
  }
  return folders
    .map((folder) => path.join('functions', folder, 'spec.ts'))
    .filter((file) => {
      try {
        return statSync(path.join(root, file)).isFile();
      } catch {
        return false;
      }
    });
}

function filesUnder(root: string, folder: string): string[] {
  let entries: string[];
  try {
    entries = readdirSync(path.join(root, folder), { recursive: true, encoding: 'utf8' });
  } catch {
    return [];
  }
  return entries
    .map((entry) => path.posix.join(folder, entry.split(path.sep).join('/')))
    .filter((file) => statSync(path.join(root, file), { throwIfNoEntry: false })?.isFile() === true);
}

function readOrEmpty(file: string): Buffer {
  try {
    return readFileSync(file);
  } catch {
    return Buffer.alloc(0);
  }
}

/** JSON with object keys sorted at every level. */
function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, item: unknown) =>
    item !== null && typeof item === 'object' && !Array.isArray(item)
      ? Object.fromEntries(Object.entries(item).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : item,
  );
}

/** The end of a child's error output: CDK's message is last, after its stack trace. */
function lastLines(text: string): string {
  return text.split('\n').slice(-5).join('\n');
}
