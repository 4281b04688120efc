import type { Lane } from '../../functions/shared/admission.js';
import type { GenerationRequestInput } from '../../functions/shared/generation-request.js';
import { Random, seedOf } from '../lib/random.js';
import type { WaitingClient } from './all-in.js';

/** One generation of a workload: when its execution starts and what it asks for. */
export interface Job {
  readonly startSeconds: number;
  readonly request: GenerationRequestInput;
  /** Its admission lane. @default 'batch' */
  readonly lane?: Lane;
  /**
   * The batch it is line `line` of (a name within its workload): its generation is named
   * `<batch id>-<line>` as a batch's are, so admission orders it as one. @default none
   */
  readonly batch?: { readonly name: string; readonly line: number };
}

export interface Workload {
  readonly name: string;
  readonly description: string;
  /** Independent repetitions with different draws; the report pools their jobs. */
  readonly trials: number;
  /** DashScope accounts the dispatcher grants slots on, each with the documented limits. @default 1 */
  readonly accounts?: number;
  /** The poll policies it runs under (by name): admission's workloads need only `adaptive`. @default all */
  readonly policies?: readonly string[];
  /** Batches whose makespan is compared with a run of the same batch alone (`adaptive` only). */
  readonly aloneBatches?: readonly string[];
  /**
   * How the client follows what it started, for `usdPer1000AllIn` (bench/poll-sim/all-in.ts):
   * listing its waiting generations once a minute, or, for batches, a GET of each batch once a minute.
   * @default 'list'
   */
  readonly client?: WaitingClient;
  /** The jobs of one trial. */
  jobs(trial: number): Job[];
}

/** The request every plain job sends: the defaults (large, 1024*1024, 40 steps, n = 1). */
const DEFAULT_REQUEST: GenerationRequestInput = {
  prompt: 'Eagle flying freely in the blue sky and white clouds',
};

/** Turbo and large, small and large sizes, few and many steps, one to four images. */
const MIXED_SHAPES: readonly GenerationRequestInput[] = [
  { prompt: 'a quick sketch', model: 'stable-diffusion-3.5-large-turbo', size: '512*512', steps: 4, n: 1 },
  {
    prompt: 'four turbo drafts',
    model: 'stable-diffusion-3.5-large-turbo',
    size: '1024*1024',
    steps: 8,
    n: 4,
  },
  { prompt: 'the default', model: 'stable-diffusion-3.5-large', size: '1024*1024', steps: 40, n: 1 },
  { prompt: 'a portrait pair', model: 'stable-diffusion-3.5-large', size: '768*1024', steps: 28, n: 2 },
  { prompt: 'detailed thumbnails', model: 'stable-diffusion-3.5-large', size: '512*512', steps: 50, n: 4 },
];

/** `count` default jobs started by a client loop, 10 ms apart. */
function burst(count: number): Job[] {
  return Array.from({ length: count }, (_, i) => ({ startSeconds: i * 0.01, request: DEFAULT_REQUEST }));
}

/** A batch of `lines` default jobs from `atSeconds` on, its executions started 10 ms apart, in line order. */
function batchOf(name: string, lines: number, atSeconds = 0): Job[] {
  return Array.from({ length: lines }, (_, i) => ({
    startSeconds: atSeconds + i * 0.01,
    request: DEFAULT_REQUEST,
    batch: { name, line: i + 1 },
  }));
}

export const WORKLOADS: readonly Workload[] = [
  {
    name: 'single',
    description: 'one default job on an idle account (200 independent trials, pooled)',
    trials: 200,
    jobs: () => [{ startSeconds: 0, request: DEFAULT_REQUEST }],
  },
  {
    name: 'burst-100',
    description: '100 default jobs started together (a client loop, 10 ms apart)',
    trials: 3,
    jobs: () => burst(100),
  },
  {
    name: 'burst-1000',
    description: '1,000 default jobs started together (10 ms apart) on one account',
    trials: 1,
    jobs: () => burst(1000),
  },
  {
    name: 'burst-10000',
    description: '10,000 default jobs started together (10 ms apart) on one account',
    trials: 1,
    jobs: () => burst(10_000),
  },
  {
    name: 'pool-3-burst-1000',
    description: 'the same 1,000 jobs on three accounts',
    trials: 1,
    accounts: 3,
    jobs: () => burst(1000),
  },
  {
    name: 'priority',
    description: '1,000 batch jobs at t = 0, and one interactive job every 5 minutes for an hour',
    trials: 1,
    jobs: () => [
      ...burst(1000),
      ...Array.from({ length: 12 }, (_, i) => ({
        startSeconds: (i + 1) * 300,
        request: DEFAULT_REQUEST,
        lane: 'interactive' as const,
      })),
    ],
  },
  {
    name: 'two-batches',
    description: 'a 5,000-line batch at t = 0 and a 10-line batch at t = 60 s, on one account',
    trials: 1,
    policies: ['adaptive'],
    aloneBatches: ['big'],
    client: 'batch',
    jobs: () => [...batchOf('big', 5000), ...batchOf('small', 10, 60)],
  },
  {
    name: 'batch-10000',
    description: 'one 10,000-line batch on one account',
    trials: 1,
    policies: ['adaptive'],
    client: 'batch',
    jobs: () => batchOf('all', 10_000),
  },
  {
    name: 'steady',
    description: 'one default job a minute for an hour',
    trials: 3,
    jobs: () => Array.from({ length: 60 }, (_, i) => ({ startSeconds: i * 60, request: DEFAULT_REQUEST })),
  },
  {
    name: 'mixed',
    description:
      '60 jobs of five shapes (turbo and large), Poisson arrivals every 20 s on average (~85 % busy)',
    trials: 3,
    jobs: (trial) => {
      const random = new Random(seedOf('mixed-arrivals', trial));
      let at = 0;
      return Array.from({ length: 60 }, () => {
        const job = { startSeconds: at, request: { ...random.pick(MIXED_SHAPES) } };
        at += random.exponential(20);
        return job;
      });
    },
  },
];
