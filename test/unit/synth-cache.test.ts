import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { synthesizeStack } from '../../local/synth.js';
import {
  cachedSynthesis,
  prepareSynthCache,
  readSynthCache,
  SynthesisError,
  type SynthesizedStack,
  synthCacheKey,
  writeSynthCache,
} from '../../local/synth-cache.js';
import { SHORT_DEADLINE } from '../support/configurations.js';
import { runSynthesis } from '../support/run-synthesis.js';

/** A stand-in for a synthesis: any valid record will do for the cache's own behaviour. */
const fakeStack = (stackName = 'Fake'): SynthesizedStack => ({
  stackName,
  template: { Resources: { Fn: { Type: 'AWS::Lambda::Function', Properties: {} } } },
  functionIds: {
    submit: 'Fn',
    poll: 'Fn',
    persist: 'Fn',
    notify: 'Fn',
    admit: 'Fn',
    dispatch: 'Fn',
    api: 'Fn',
    trigger: 'Fn',
    reconcile: 'Fn',
  },
});

let root: string;
let cacheDir: string;

/** Writes `content` at `file` under the fake project root. */
function put(file: string, content: string): void {
  mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
  writeFileSync(path.join(root, file), content);
}

beforeEach(() => {
  root = mkdtempSync(path.join(tmpdir(), 'synth-cache-root-'));
  cacheDir = path.join(root, 'cache');
  put('infra/stack.ts', 'export const stack = 1;');
  put('infra/constructs/workflow.ts', 'export const workflow = 1;');
  put('functions/shared/errors.ts', 'export const errors = 1;');
  put('functions/submit/handler.ts', 'export const handler = 1;');
  put('cdk.json', '{"context":{}}');
  put('package-lock.json', '{}');
});

afterEach(() => {
  rmSync(root, { recursive: true, force: true });
});

describe('synthCacheKey', () => {
  it('stays the same while nothing it depends on changes', () => {
    expect(synthCacheKey(root, { a: 1 })).toBe(synthCacheKey(root, { a: 1 }));
  });

  it('changes when a file under infra/ changes', () => {
    const before = synthCacheKey(root);
    put('infra/constructs/workflow.ts', 'export const workflow = 2;');

    expect(synthCacheKey(root)).not.toBe(before);
  });

  it('changes when a file is added under functions/shared/', () => {
    const before = synthCacheKey(root);
    put('functions/shared/new.ts', 'export {};');

    expect(synthCacheKey(root)).not.toBe(before);
  });

  it('changes when cdk.json or package-lock.json changes', () => {
    const before = synthCacheKey(root);
    put('cdk.json', '{"context":{"generation":{"deadlineSeconds":60}}}');
    const afterCdkJson = synthCacheKey(root);
    put('package-lock.json', '{"lockfileVersion":3}');

    expect(new Set([before, afterCdkJson, synthCacheKey(root)]).size).toBe(3);
  });

  it("changes when a function's environment spec changes (the constructs encode with it)", () => {
    put('functions/submit/spec.ts', 'export const submitSpec = 1;');
    const before = synthCacheKey(root);
    put('functions/submit/spec.ts', 'export const submitSpec = 2;');

    expect(synthCacheKey(root)).not.toBe(before);
  });

  it('ignores function code outside functions/shared/ (the template does not depend on it unbundled)', () => {
    const before = synthCacheKey(root);
    put('functions/submit/handler.ts', 'export const handler = 2;');

    expect(synthCacheKey(root)).toBe(before);
  });

  it('changes with the configuration overrides, whatever the order of their keys', () => {
    const base = synthCacheKey(root, {});
    const deadline = synthCacheKey(root, { deadlineSeconds: 60, bucket: { versioned: true } });

    expect(deadline).not.toBe(base);
    expect(synthCacheKey(root, { bucket: { versioned: true }, deadlineSeconds: 60 })).toBe(deadline);
  });
});

describe('cachedSynthesis', () => {
  it('synthesizes on a miss and reads the cache on the next call', () => {
    const synthesize = vi.fn(() => fakeStack());

    const first = cachedSynthesis({ dir: cacheDir, root, generation: { a: 1 }, synthesize });
    const second = cachedSynthesis({ dir: cacheDir, root, generation: { a: 1 }, synthesize });

    expect(synthesize).toHaveBeenCalledTimes(1);
    expect(second).toEqual(first);
  });

  it('synthesizes again when an infra file changed', () => {
    const synthesize = vi.fn(() => fakeStack());
    cachedSynthesis({ dir: cacheDir, root, synthesize });
    put('infra/stack.ts', 'export const stack = 2;');

    cachedSynthesis({ dir: cacheDir, root, synthesize });

    expect(synthesize).toHaveBeenCalledTimes(2);
  });

  it('passes the configuration overrides to the synthesis', () => {
    const synthesize = vi.fn(() => fakeStack());

    cachedSynthesis({ dir: cacheDir, root, generation: { deadlineSeconds: 60 }, synthesize });

    expect(synthesize).toHaveBeenCalledWith({ deadlineSeconds: 60 });
  });

  it('ignores a corrupt entry, synthesizes, and replaces it with a readable one', () => {
    const key = synthCacheKey(root);
    mkdirSync(cacheDir, { recursive: true });
    writeFileSync(path.join(cacheDir, `${key}.json`), '{"format":1,"key":"');
    const synthesize = vi.fn(() => fakeStack('Rebuilt'));

    const stack = cachedSynthesis({ dir: cacheDir, root, synthesize });

    expect(synthesize).toHaveBeenCalledTimes(1);
    expect(stack.stackName).toBe('Rebuilt');
    expect(readSynthCache(cacheDir, key)?.stackName).toBe('Rebuilt');
  });

  it('ignores an entry that parses but is not a synthesized stack', () => {
    const key = synthCacheKey(root);
    mkdirSync(cacheDir, { recursive: true });
    writeFileSync(path.join(cacheDir, `${key}.json`), JSON.stringify({ format: 1, key, stack: {} }));

    expect(readSynthCache(cacheDir, key)).toBeUndefined();
  });

  it('returns the synthesis when the cache folder cannot be written', () => {
    const blocked = path.join(root, 'a-file');
    writeFileSync(blocked, '');

    const stack = cachedSynthesis({ dir: blocked, root, synthesize: () => fakeStack('Uncached') });

    expect(stack.stackName).toBe('Uncached');
  });
});

describe('prepareSynthCache', () => {
  /** Stands in for the child: one stack per configuration, named after it. */
  const namedAfter = (generations: readonly Record<string, unknown>[]) =>
    generations.map((generation) => fakeStack(JSON.stringify(generation)));

  it('synthesizes the missing configurations in one call, each distinct one once, in order', () => {
    cachedSynthesis({ dir: cacheDir, root, generation: { b: 2 }, synthesize: () => fakeStack('b') });
    const synthesizeAll = vi.fn(namedAfter);

    const count = prepareSynthCache({
      dir: cacheDir,
      root,
      generations: [{ a: 1 }, { b: 2 }, { a: 1 }, { c: 3 }],
      synthesizeAll,
    });

    expect(count).toBe(2);
    expect(synthesizeAll.mock.calls).toEqual([[[{ a: 1 }, { c: 3 }]]]);
    const unused = () => {
      throw new Error('a prepared configuration was synthesized again');
    };
    expect(cachedSynthesis({ dir: cacheDir, root, generation: { c: 3 }, synthesize: unused }).stackName).toBe(
      '{"c":3}',
    );
    expect(cachedSynthesis({ dir: cacheDir, root, generation: { a: 1 }, synthesize: unused }).stackName).toBe(
      '{"a":1}',
    );
  });

  it('synthesizes nothing when every configuration is cached', () => {
    prepareSynthCache({ dir: cacheDir, root, generations: [{}, { a: 1 }], synthesizeAll: namedAfter });
    const synthesizeAll = vi.fn(namedAfter);

    expect(prepareSynthCache({ dir: cacheDir, root, generations: [{ a: 1 }, {}], synthesizeAll })).toBe(0);
    expect(synthesizeAll).not.toHaveBeenCalled();
  });

  it('refuses a synthesis that returns fewer stacks than it was asked for, and caches none', () => {
    const prepare = () =>
      prepareSynthCache({
        dir: cacheDir,
        root,
        generations: [{ a: 1 }, { b: 2 }],
        synthesizeAll: () => [fakeStack()],
      });

    expect(prepare).toThrow(SynthesisError);
    expect(prepare).toThrow('asked for 2 syntheses, got 1');
    expect(readSynthCache(cacheDir, synthCacheKey(root, { a: 1 }))).toBeUndefined();
  });
});

describe('writeSynthCache', () => {
  it('leaves only the entry in the folder (the temporary file is renamed into place)', () => {
    writeSynthCache(cacheDir, 'k', fakeStack());

    expect(readdirSync(cacheDir)).toEqual(['k.json']);
    expect(JSON.parse(readFileSync(path.join(cacheDir, 'k.json'), 'utf8')).stack).toEqual(fakeStack());
  });
});

describe('the cache, with the real stack', () => {
  it('holds exactly what a fresh in-process synthesis gives', () => {
    // This run's cache: cdk.json's configuration, synthesized in a child process by the global
    // setup (or, run alone, by this call), exactly what every local runner of the run reads.
    const cached = runSynthesis();

    expect(cached).toEqual(synthesizeStack({}));
  }, 300_000); // a real synthesis, maybe two: tens of seconds when the shared machine is busy

  it('holds each configuration the global setup synthesized together under its own key', () => {
    // Synthesized in the same child as cdk.json's own: a stack given back out of order would be
    // another configuration's (the deadline is in the template).
    const cached = runSynthesis(SHORT_DEADLINE);

    expect(cached).toEqual(synthesizeStack(SHORT_DEADLINE));
    expect(cached.template).not.toEqual(runSynthesis().template);
  }, 300_000);
});
