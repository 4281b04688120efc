import { beforeEach, describe, expect, it } from 'vitest';
import { dispatch, dispatchInTurn } from '../../functions/dispatch/dispatch.js';
import type {
  AdmissionGrant,
  AdmissionQueue,
  AdmissionSettings,
  DispatcherLease,
  ExecutionResumer,
  Lane,
} from '../../functions/shared/admission.js';
import {
  createDynamoAdmissionQueue,
  createDynamoDispatcherLease,
} from '../../functions/shared/aws/dynamodb-admission.js';
import { silentLogger } from '../../functions/shared/logger.js';
import { MemoryAdmissionQueue, MemoryDispatcherLease } from '../../local/memory-admission.js';
import { useLocalTables } from '../support/local-tables.js';
import { waitFor } from '../support/wait-for.js';

/**
 * The dispatcher's lease, one contract for both stores (in memory, and DynamoDB on dynalite in
 * the generations table the stack declares), and the real dispatcher taking turns through it:
 * runs at once over one store never grant an entry twice nor an account past its depth, a dead
 * holder is taken over once its lease runs out, and a kick during a run makes one more run.
 */

const tables = useLocalTables('lease');

interface Store {
  readonly queue: AdmissionQueue;
  readonly lease: DispatcherLease;
}

const stores: [string, () => Promise<Store>][] = [
  ['in memory', async () => ({ queue: new MemoryAdmissionQueue(), lease: new MemoryDispatcherLease() })],
  [
    'DynamoDB on dynalite',
    async () => {
      const table = await tables.fresh();
      return {
        queue: createDynamoAdmissionQueue(tables.client(), table),
        lease: createDynamoDispatcherLease(tables.client(), table),
      };
    },
  ],
];

const T0 = Date.UTC(2026, 10, 30, 12, 0, 0);
const LEASE_MS = 30_000;
const SETTINGS: AdmissionSettings = {
  accounts: [{ name: 'main', depth: 2, submitsPerSecond: 2 }],
  batchEvery: 4,
  maxQueueSeconds: 3600,
};

/** A promise opened from outside. */
function gate() {
  let open = () => {};
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { opened, open };
}

/** Step Functions' side: records each resume; a token can be held (a slow SendTaskSuccess) or be gone. */
class SlowResumer implements ExecutionResumer {
  readonly resumed: string[] = [];
  readonly gone = new Set<string>();
  readonly #held = new Map<string, { reached: ReturnType<typeof gate>; release: ReturnType<typeof gate> }>();
  beforeResume?: (token: string) => Promise<void>;

  /** The resume of `token` waits until the returned `release` opens; `reached` opens when it starts. */
  hold(token: string) {
    const held = { reached: gate(), release: gate() };
    this.#held.set(token, held);
    return { reached: held.reached.opened, release: held.release.open };
  }

  async resume(token: string, _grant: AdmissionGrant) {
    const held = this.#held.get(token);
    if (held) {
      held.reached.open();
      await held.release.opened;
    }
    await this.beforeResume?.(token);
    if (this.gone.has(token)) return 'gone' as const;
    this.resumed.push(token);
    return 'resumed' as const;
  }

  async fail() {
    return 'failed' as const;
  }
}

describe.each(stores)('the dispatcher’s lease %s', (_name, create) => {
  let lease: DispatcherLease;

  beforeEach(async () => {
    ({ lease } = await create());
  });

  it('is held by one owner at a time, until it runs out unrenewed', async () => {
    expect(await lease.take('one', T0, T0 + LEASE_MS)).toBe(true);
    expect(await lease.take('two', T0 + 1, T0 + 1 + LEASE_MS)).toBe(false);
    expect(await lease.take('two', T0 + LEASE_MS, T0 + 2 * LEASE_MS)).toBe(false);
    expect(await lease.renew('one', T0 + 2 * LEASE_MS)).toBe(true);
    expect(await lease.take('two', T0 + LEASE_MS + 1, T0 + 3 * LEASE_MS)).toBe(false);

    expect(await lease.take('two', T0 + 2 * LEASE_MS + 1, T0 + 3 * LEASE_MS)).toBe(true);
    expect(await lease.renew('one', T0 + 4 * LEASE_MS)).toBe(false);
    expect(await lease.finish('one', T0 + 4 * LEASE_MS)).toBe('lost');
    expect(await lease.finish('two', T0 + 4 * LEASE_MS)).toBe('released');
    expect(await lease.take('three', T0 + 2 * LEASE_MS + 2, T0 + 3 * LEASE_MS)).toBe(true);
  });

  it('passes requests to its holder, which runs once more for all of them before it releases', async () => {
    expect(await lease.request(T0)).toBe(false);
    await lease.take('one', T0, T0 + LEASE_MS);

    expect(await lease.request(T0 + 1)).toBe(true);
    expect(await lease.request(T0 + 2)).toBe(true);
    expect(await lease.finish('one', T0 + 3 + LEASE_MS)).toBe('again');
    // Renewed by the finish that runs again.
    expect(await lease.take('two', T0 + LEASE_MS + 1, T0 + 2 * LEASE_MS)).toBe(false);
    expect(await lease.finish('one', T0 + 4 + LEASE_MS)).toBe('released');
    expect(await lease.request(T0 + 5)).toBe(false);
  });

  it('takes no request on a lease run out; its next holder starts without the old one’s', async () => {
    await lease.take('dead', T0, T0 + LEASE_MS);
    expect(await lease.request(T0 + 1)).toBe(true);
    expect(await lease.request(T0 + LEASE_MS + 1)).toBe(false);

    expect(await lease.take('next', T0 + LEASE_MS + 1, T0 + 2 * LEASE_MS)).toBe(true);
    expect(await lease.finish('next', T0 + 2 * LEASE_MS)).toBe('released');
  });

  it('is free at once when its holder hands it off, and only its holder can', async () => {
    await lease.take('one', T0, T0 + LEASE_MS);
    await lease.handOff('other');
    expect(await lease.take('two', T0 + 1, T0 + LEASE_MS)).toBe(false);

    await lease.handOff('one');

    expect(await lease.request(T0 + 2)).toBe(false);
    expect(await lease.take('two', T0 + 2, T0 + LEASE_MS)).toBe(true);
  });
});

describe.each(stores)('the dispatcher taking turns %s', (_name, create) => {
  let store: Store;
  let now: number;
  let resumer: SlowResumer;

  beforeEach(async () => {
    store = await create();
    now = T0;
    resumer = new SlowResumer();
  });

  const deps = (overrides: { queue?: AdmissionQueue; sleep?: (ms: number) => Promise<void> } = {}) => ({
    queue: store.queue,
    lease: store.lease,
    resumer,
    settings: SETTINGS,
    clock: { now: () => now },
    sleep: async (ms: number) => {
      now += ms;
    },
    logger: silentLogger,
    ...overrides,
  });
  const enqueue = (id: string, lane: Lane = 'batch', token = `token-${id}`) =>
    store.queue.enqueue({ id, lane, enqueuedAt: now, expectedRunSeconds: 20, token });
  const slots = async () => (await store.queue.slots('main')).map((slot) => slot.id).sort();

  it('runs one at a time: a second run leaves a request and returns; no entry granted twice, no account past its depth', async () => {
    for (const id of ['a', 'b', 'c', 'd']) await enqueue(id);
    const resumeA = resumer.hold('token-a');
    const first = dispatchInTurn(deps());
    await resumeA.reached;
    // The second run's view of the store is slow: what it reads of the slots is stale by the time
    // it reads the queue (the first run went on granting meanwhile).
    const firstDone = first.then(() => undefined);
    const readSlots = gate();
    const stale = viewOf(store.queue, {
      slots: async (account: string) => {
        const read = await store.queue.slots(account);
        readSlots.open();
        await Promise.race([
          firstDone,
          waitFor(() => resumer.resumed.includes('token-b'), {
            what: 'the first run to resume token-b',
            timeoutMs: 60_000,
            intervalMs: 5,
          }),
        ]);
        return read;
      },
    });
    const second = dispatchInTurn(deps({ queue: stale }));
    await Promise.race([readSlots.opened, second]);
    resumeA.release();

    const [one, two] = await Promise.all([first, second]);

    // Each entry granted once, and the account's depth (2) held.
    expect(resumer.resumed).toEqual(['token-a', 'token-b']);
    expect(await slots()).toEqual(['a', 'b']);
    // The second returned at once; the first ran once more for it.
    expect(two).toEqual({ outcome: 'requested', runs: [] });
    expect(one.outcome).toBe('released');
    expect(one.runs.map((run) => run.granted.map((grant) => grant.id))).toEqual([['a', 'b'], []]);
  });

  it('takes over a lease whose holder died, once it has run out', async () => {
    await enqueue('a');
    expect(await store.lease.take('dead', now, now + LEASE_MS)).toBe(true);

    expect(await dispatchInTurn(deps())).toEqual({ outcome: 'requested', runs: [] });
    expect(resumer.resumed).toEqual([]);

    now += LEASE_MS + 1;
    const taken = await dispatchInTurn(deps());

    expect(taken.outcome).toBe('released');
    expect(resumer.resumed).toEqual(['token-a']);
    expect(await store.lease.renew('dead', now + LEASE_MS)).toBe(false);
  });

  it('makes one more run for a kick during a run, which grants what the kick rang for', async () => {
    await enqueue('a');
    const resumeA = resumer.hold('token-a');
    const first = dispatchInTurn(deps());
    await resumeA.reached;

    // Admit, during the run: an entry the run read the queue too early to see, and its kick.
    await enqueue('b');
    expect(await dispatchInTurn(deps())).toEqual({ outcome: 'requested', runs: [] });
    resumeA.release();
    const one = await first;

    expect(one.runs.map((run) => run.granted.map((grant) => grant.id))).toEqual([['a'], ['b']]);
    expect(one.outcome).toBe('released');
    expect(await slots()).toEqual(['a', 'b']);
  });

  it('stops a run whose lease ran out and was taken over: the new holder’s grants count, not its stale plan', async () => {
    for (const id of ['a', 'b']) await enqueue(id);
    const resumeA = resumer.hold('token-a');
    const first = dispatchInTurn(deps());
    await resumeA.reached;

    // The first run stalls past its lease; another takes over and fills the depth (interactive first).
    now += LEASE_MS + 1;
    await enqueue('i', 'interactive');
    const second = await dispatchInTurn(deps());
    expect(second.runs.map((run) => run.granted.map((grant) => grant.id))).toEqual([['i']]);
    resumeA.release();
    const one = await first;

    expect(one.outcome).toBe('lost');
    expect(one.runs.map((run) => run.granted.map((grant) => grant.id))).toEqual([['a']]);
    expect(await slots()).toEqual(['a', 'i']);
    expect((await store.queue.waiting('batch', 10)).map((entry) => entry.id)).toEqual(['b']);
  });

  it('grants an entry enqueued again during its run (a retried Admit) with its new token, on the next run', async () => {
    await enqueue('a');
    await enqueue('b');
    // Admit of b is retried while the run waits for b's submit spacing: b has a new token.
    const sleep = async (ms: number) => {
      now += ms;
      await enqueue('b', 'batch', 'token-b-retried');
    };
    resumer.gone.add('token-b');

    const first = await dispatch(deps({ sleep }));

    expect(first.granted.map((grant) => grant.id)).toEqual(['a']);
    expect(await store.queue.get('b')).toMatchObject({ kind: 'waiting', token: 'token-b-retried' });
    now += 1000;
    await dispatch(deps());
    expect(resumer.resumed).toEqual(['token-a', 'token-b-retried']);
  });

  it('gives back only the entry it granted when that execution is gone: the entry enqueued again meanwhile waits on', async () => {
    await enqueue('a');
    // Admit of a is retried while SendTaskSuccess goes to its first token, which no longer waits.
    resumer.gone.add('token-a');
    resumer.beforeResume = async (token) => {
      if (token === 'token-a') await enqueue('a', 'batch', 'token-a-retried');
    };

    const first = await dispatch(deps());

    expect(first.gone).toEqual(['a']);
    expect(await store.queue.get('a')).toMatchObject({ kind: 'waiting', token: 'token-a-retried' });
    await dispatch(deps());
    expect(resumer.resumed).toEqual(['token-a-retried']);
  });
});

/** `queue` with some of its operations replaced (another process's client, slower). */
function viewOf(queue: AdmissionQueue, replaced: Partial<AdmissionQueue>): AdmissionQueue {
  return new Proxy(queue, {
    get(target, key) {
      if (key in replaced) return replaced[key as keyof AdmissionQueue];
      const value = Reflect.get(target, key);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}
