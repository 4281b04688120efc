import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { Admission, AdmissionQueue, WaitingEntry } from '../../functions/shared/admission.js';
import * as slotLife from '../../functions/shared/slot-life.js';
import {
  awaitsResume,
  expireEntry,
  freeLostSlot,
  giveSlotBack,
  grantSlot,
  noteStarted,
  noteSubmitAttempt,
  noteSubmitted,
  queueForSlot,
  regrantOf,
  releaseSlot,
  SLOT_TRANSITIONS,
  slotState,
  withdrawFromQueue,
} from '../../functions/shared/slot-life.js';
import { MemoryAdmissionQueue } from '../../local/memory-admission.js';

const T0 = Date.UTC(2026, 10, 30, 12, 0, 0);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

const entry = (id: string, token = `token-${id}`): WaitingEntry => ({
  id,
  lane: 'batch',
  enqueuedAt: T0,
  expectedRunSeconds: 20,
  token,
});

/** A logger that keeps its warnings. */
function warnings() {
  const lines: { message: string; fields?: Record<string, unknown> }[] = [];
  return {
    lines,
    logger: { warn: (message: string, fields?: Record<string, unknown>) => lines.push({ message, fields }) },
  };
}

/** The in-memory queue with a doorbell that counts, and a log of what happened in which order. */
function setup(queue: AdmissionQueue = new MemoryAdmissionQueue()) {
  const events: string[] = [];
  const admission: Admission = {
    queue,
    kick: async () => {
      events.push('kick');
    },
  };
  return { queue, admission, events, kicks: () => events.filter((event) => event === 'kick').length };
}

/** A queue whose named methods fail, as a store that is unavailable. */
function failing(names: readonly (keyof AdmissionQueue)[], calls: string[] = []): AdmissionQueue {
  const inner = new MemoryAdmissionQueue();
  return new Proxy(inner, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        calls.push(String(property));
        if (names.includes(property as keyof AdmissionQueue))
          return Promise.reject(new Error(`${String(property)} unavailable`));
        return value.apply(target, args);
      };
    },
  });
}

describe('a slot’s life', () => {
  it('goes waiting → granted → submitting → submitted → running → released, each step by its transition', async () => {
    const { queue, admission, kicks } = setup();
    const { logger, lines } = warnings();
    const state = async () => slotState(await queue.get('a'));

    expect(await state()).toBe('released');
    await queueForSlot(admission, entry('a'));
    expect(await state()).toBe('waiting');
    expect(await grantSlot(queue, entry('a'), 'main', T0 + 100)).toBe(true);
    expect(await state()).toBe('granted');
    await noteSubmitAttempt(queue, 'a', { at: T0 + 200, seed: 7 }, { logger });
    expect(await state()).toBe('submitting');
    await noteSubmitted(
      queue,
      'a',
      { account: 'main', taskId: 'task-a' },
      { clock: { now: () => T0 + 300 }, logger },
    );
    expect(await state()).toBe('submitted');
    expect(await queue.recentTasks('main', T0)).toEqual(new Set(['task-a']));
    await noteStarted(queue, 'a', T0 + 400, { logger });
    expect(await state()).toBe('running');
    expect(await queue.get('a')).toMatchObject({
      account: 'main',
      grantedAt: T0 + 100,
      submitAttemptAt: T0 + 200,
      submitSeed: 7,
      submittedAt: T0 + 300,
      taskId: 'task-a',
      startedAt: T0 + 400,
    });
    await releaseSlot(admission, 'a', { logger });
    expect(await state()).toBe('released');
    expect(kicks()).toBe(2);
    expect(lines).toEqual([]);
  });

  it('queues, lets the caller log, then rings the dispatcher, in that order', async () => {
    const { queue, admission, events } = setup();

    await queueForSlot(admission, entry('a'), { onQueued: () => events.push('logged') });

    expect(events).toEqual(['logged', 'kick']);
    expect((await queue.waiting('batch', 10)).map((waiting) => waiting.id)).toEqual(['a']);
  });

  it('sends a granted slot that never attempted a submit back to waiting when Admit runs again with another token', async () => {
    const { queue, admission } = setup();
    await queueForSlot(admission, entry('a'));
    await grantSlot(queue, entry('a'), 'main', T0);

    await queueForSlot(admission, entry('a', 'token-new'));

    expect(await queue.get('a')).toMatchObject({ kind: 'waiting', token: 'token-new', enqueuedAt: T0 });
  });

  it('grants only the entry as read: one enqueued again with a new token waits for its own grant', async () => {
    const { queue, admission } = setup();
    await queueForSlot(admission, entry('a', 'token-new'));

    expect(await grantSlot(queue, entry('a', 'token-old'), 'main', T0)).toBe(false);
    expect(slotState(await queue.get('a'))).toBe('waiting');
  });

  it('gives back a slot whose execution is gone, but never the entry of a newer token', async () => {
    const { queue, admission, kicks } = setup();
    await queueForSlot(admission, entry('a'));
    await grantSlot(queue, entry('a'), 'main', T0);
    await queueForSlot(admission, entry('b', 'token-new'));

    expect(await giveSlotBack(queue, entry('b', 'token-old'))).toBe(false);
    expect(slotState(await queue.get('b'))).toBe('waiting');
    expect(await giveSlotBack(queue, entry('a'))).toBe(true);
    expect(slotState(await queue.get('a'))).toBe('released');
    // The dispatcher gives it back itself: no ring.
    expect(kicks()).toBe(2);
  });

  it('expires only the entry as read', async () => {
    const { queue, admission } = setup();
    await queueForSlot(admission, entry('a', 'token-new'));

    expect(await expireEntry(queue, entry('a', 'token-old'))).toBe(false);
    expect(await expireEntry(queue, entry('a', 'token-new'))).toBe(true);
    expect(await queue.get('a')).toBeUndefined();
  });

  it('frees a slot whose release was lost, whatever its state', async () => {
    const { queue, admission } = setup();
    await queueForSlot(admission, entry('a'));
    await grantSlot(queue, entry('a'), 'main', T0);
    await noteStarted(queue, 'a', T0, { logger: warnings().logger });

    expect(await freeLostSlot(queue, 'a')).toBe(true);
    expect(await queue.slots('main')).toEqual([]);
    expect(await freeLostSlot(queue, 'a')).toBe(false);
  });

  it('tells a slot that awaits its resume (no attempt, no answer) from one whose execution went on', () => {
    expect(awaitsResume({})).toBe(true);
    expect(awaitsResume({ submitAttemptAt: T0 })).toBe(false);
    expect(awaitsResume({ submittedAt: T0 })).toBe(false);
  });

  describe('regrantOf', () => {
    it('gives the token of a slot that is still the grant read', async () => {
      const { queue, admission } = setup();
      await queueForSlot(admission, entry('a'));
      await grantSlot(queue, entry('a'), 'main', T0);
      const [slot] = await queue.slots('main');

      expect(await regrantOf(queue, slot!)).toEqual({ token: 'token-a', account: 'main', grantedAt: T0 });
    });

    it('gives nothing for a slot released, or enqueued again since (its new token waits for a grant)', async () => {
      const { queue, admission } = setup();
      await queueForSlot(admission, entry('a'));
      await grantSlot(queue, entry('a'), 'main', T0);
      const [slot] = await queue.slots('main');

      await queueForSlot(admission, entry('a', 'token-new'));
      expect(await regrantOf(queue, slot!)).toBeUndefined();
      await releaseSlot(admission, 'a', { logger: warnings().logger });
      expect(await regrantOf(queue, slot!)).toBeUndefined();
    });

    it('gives nothing for a slot granted anew since it was read (another run’s grant, on another account)', async () => {
      const { queue, admission } = setup();
      await queueForSlot(admission, entry('a'));
      await grantSlot(queue, entry('a'), 'main', T0);
      const [slot] = await queue.slots('main');
      // Enqueued again (a retried Admit), then granted by another run on another account.
      await queueForSlot(admission, entry('a', 'token-new'));
      await grantSlot(queue, entry('a', 'token-new'), 'other', T0 + 5000);

      expect(await regrantOf(queue, slot!)).toBeUndefined();
    });
  });

  describe('when the store fails', () => {
    it('notes never throw: each warns with the caller’s logger', async () => {
      const queue = failing(['note']);
      const { logger, lines } = warnings();

      await noteSubmitAttempt(queue, 'a', { at: T0, seed: 1 }, { logger });
      await noteSubmitted(queue, 'a', { account: 'main', taskId: 't' }, { clock: { now: () => T0 }, logger });
      await noteStarted(queue, 'a', T0, { logger });

      expect(lines.map((line) => line.message)).toEqual([
        'Submit attempt not noted on the slot',
        'Submit not noted on the slot',
        'Start not noted on the slot',
      ]);
      expect(lines[0]?.fields).toEqual({ reason: 'Error: note unavailable' });
    });

    it('records the task for the account only once the slot knows it', async () => {
      const calls: string[] = [];
      const queue = failing(['note'], calls);

      await noteSubmitted(
        queue,
        'a',
        { account: 'main', taskId: 't' },
        { clock: { now: () => T0 }, logger: warnings().logger },
      );

      expect(calls).toEqual(['note']);
    });

    it('a release never throws, warns with the generation, and rings nothing when it failed', async () => {
      const { admission, kicks } = setup(failing(['release']));
      const { logger, lines } = warnings();

      await releaseSlot(admission, 'a', { logger });

      expect(lines).toEqual([
        {
          message: 'Admission slot not released; the dispatcher sweep will',
          fields: { generationId: 'a', reason: 'Error: release unavailable' },
        },
      ]);
      expect(kicks()).toBe(0);
    });

    it('a withdrawal throws: the cancel fails before it stops anything', async () => {
      await expect(withdrawFromQueue(failing(['release']), 'a')).rejects.toThrow('release unavailable');
    });
  });

  it('releases are idempotent and every one rings (an earlier ring may have been lost)', async () => {
    const { queue, admission, kicks } = setup();
    await queueForSlot(admission, entry('a'));
    await grantSlot(queue, entry('a'), 'main', T0);
    const { logger } = warnings();

    // Poll (the task ended), Notify, the reconciler: one generation, three releases.
    for (let i = 0; i < 3; i++) await releaseSlot(admission, 'a', { logger });

    expect(await queue.get('a')).toBeUndefined();
    expect(kicks()).toBe(1 + 3);
  });

  it('does nothing without admission (a stack without the queue)', async () => {
    await expect(releaseSlot(undefined, 'a', { logger: warnings().logger })).resolves.toBeUndefined();
    await expect(withdrawFromQueue(undefined, 'a')).resolves.toBeUndefined();
    await expect(noteStarted(undefined, 'a', T0, { logger: warnings().logger })).resolves.toBeUndefined();
  });

  it('withdraws a waiting entry at once, without ringing (the API has no doorbell)', async () => {
    const { queue, admission, kicks } = setup();
    await queueForSlot(admission, entry('a'));

    await withdrawFromQueue(queue, 'a');

    expect(await queue.get('a')).toBeUndefined();
    expect(kicks()).toBe(1);
  });
});

describe('the one owner of a slot’s life', () => {
  it('exports every transition it names, and docs/admission.md draws each', async () => {
    const docs = await readFile(path.join(root, 'docs/admission.md'), 'utf8');
    const diagram = docs.match(/## A slot's life[\s\S]*?```mermaid\n([\s\S]*?)```/)?.[1] ?? '';
    expect(diagram).toContain('stateDiagram-v2');
    for (const name of Object.keys(SLOT_TRANSITIONS)) {
      expect(typeof (slotLife as Record<string, unknown>)[name], name).toBe('function');
      expect(diagram, name).toContain(name);
    }
  });

  it('is the only writer of entries and slots in functions/ and local/ (the adapters aside)', async () => {
    const owner = 'functions/shared/slot-life.ts';
    const adapters = new Set(['functions/shared/aws/dynamodb-admission.ts', 'local/memory-admission.ts']);
    // Across line breaks too (`queue\n  ?.note(`).
    const write = /\bqueue\s*\??\.\s*(enqueue|grant|note|release|recordTask)\(/g;
    const offenders: string[] = [];
    for (const dir of ['functions', 'local']) {
      for (const file of await sources(path.join(root, dir))) {
        const relative = path.relative(root, file).split(path.sep).join('/');
        if (relative === owner || adapters.has(relative)) continue;
        const text = await readFile(file, 'utf8');
        for (const match of text.matchAll(write)) {
          const line = text.slice(0, match.index).split('\n').length;
          offenders.push(`${relative}:${line}: ${match[0].replace(/\s+/g, '')}`);
        }
      }
    }
    expect(offenders).toEqual([]);
  });
});

async function sources(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const item of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, item.name);
    if (item.isDirectory()) {
      if (item.name !== 'node_modules' && !item.name.startsWith('.')) found.push(...(await sources(full)));
    } else if (/\.tsx?$/.test(item.name) && !item.name.endsWith('.d.ts')) found.push(full);
  }
  return found;
}

describe('the dispatcher’s sweep through the slot’s life', () => {
  it('does not resume again with a grant that is no longer the slot’s (re-queued and granted elsewhere meanwhile)', async () => {
    const queue = new MemoryAdmissionQueue();
    const admission = setup(queue).admission;
    await queueForSlot(admission, entry('a'));
    await grantSlot(queue, entry('a'), 'main', T0);
    // Between the sweep's read of the slots and its read of the record: a retried Admit and a
    // grant by another run (one whose lease outlived this one's) on the other account.
    const get = queue.get.bind(queue);
    let raced = false;
    queue.get = async (id) => {
      if (!raced) {
        raced = true;
        await queueForSlot(admission, entry('a', 'token-new'));
        await grantSlot(queue, entry('a', 'token-new'), 'other', T0 + 61_000);
      }
      return get(id);
    };
    const resumed: { token: string; account: string }[] = [];
    const { dispatch } = await import('../../functions/dispatch/dispatch.js');

    const report = await dispatch({
      queue,
      resumer: {
        resume: async (token, grant) => {
          resumed.push({ token, account: grant.account });
          return 'resumed';
        },
        fail: async () => 'failed',
      },
      settings: {
        accounts: [
          { name: 'main', depth: 1, submitsPerSecond: 2 },
          { name: 'other', depth: 1, submitsPerSecond: 2 },
        ],
        batchEvery: 4,
        maxQueueSeconds: 3600,
      },
      clock: { now: () => T0 + 61_000 },
      sleep: async () => {},
      logger: { debug() {}, info() {}, warn() {}, error() {} },
    });

    // Before: token-new resumed with account "main", while its slot is on "other".
    expect(resumed).toEqual([]);
    expect(report.regranted).toEqual([]);
  });
});
