/**
 * `npm run bench:memory [-- --json]`: Lambda memory against duration and cost for Submit, Poll,
 * Persist and Notify, projected from what each real handler does locally.
 *
 * Whole executions run through the local runner (the synthesized workflow, the real handlers)
 * against the DashScope emulator and s3rver, which run in a child process so that their CPU time
 * is not counted. Each Task invocation's CPU time (`process.cpuUsage()`) and its calls (DashScope,
 * downloads, S3, events) are recorded; `bench/memory-model.ts` projects them to each memory size.
 * See bench/RESULTS.md for the method and its limits.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { STATE } from '../infra/constructs/workflow.js';
import { emulatorRunTimeModel } from '../local/dashscope-emulator/run-time.js';
import { createLocalRunner } from '../local/runner.js';
import { localS3Client } from '../local/s3.js';
import { quantile } from './lib/random.js';
import { markdownTable, round } from './lib/table.js';
import {
  chooseMemory,
  FULL_VCPU_MB,
  type InvocationProfile,
  MEMORY_SIZES_MB,
  type NetworkAssumptions,
  networkMs,
  projectedDurationMs,
  usdPerMillion,
} from './memory-model.js';
import { LATENCY_MS } from './poll-sim/simulate.js';

const EMULATOR_SPEED = 4;
const WARM_UP_EXECUTIONS = 2;
const MEASURED_EXECUTIONS = 10;
/** The request measured: two default images, so Persist copies more than one. */
const REQUEST = { prompt: 'Eagle flying freely in the blue sky and white clouds', n: 2 };
/** How much slower than its fastest size a function may be made to save money, in ms. */
const LATENCY_ALLOWANCE_MS = 100;

/**
 * The network on AWS, assumed: DashScope as the poll benchmark assumes it (30–60 ms each way),
 * S3 and EventBridge in the same region, and result downloads at 20 MB/s.
 */
export const NETWORK: NetworkAssumptions = {
  dashscopeRoundTripMs: LATENCY_MS.oneWay[0] + LATENCY_MS.oneWay[1],
  s3RequestMs: 25,
  eventsRequestMs: 25,
  downloadBytesPerMs: 20_000,
};

const FUNCTIONS = {
  [STATE.submit]: 'submit',
  [STATE.poll]: 'poll',
  [STATE.persist]: 'persist',
  [STATE.notifySucceeded]: 'notify',
  [STATE.notifyFailed]: 'notify',
} as const satisfies Record<string, string>;
type FunctionName = (typeof FUNCTIONS)[keyof typeof FUNCTIONS];
const NAMES: readonly FunctionName[] = ['submit', 'poll', 'persist', 'notify'];

interface Counters {
  dashscopeCalls: number;
  downloads: number;
  downloadBytes: number;
  s3Calls: number;
  events: number;
}

export interface MemoryRow {
  readonly function: FunctionName;
  readonly invocations: number;
  /** Median measured CPU ms per invocation, and per DashScope call for Poll. */
  readonly cpuMs: number;
  readonly networkMs: number;
  readonly configuredMb: number;
  readonly chosenMb: number;
  readonly sizes: ReadonlyArray<{ memoryMb: number; durationMs: number; usdPerMillion: number }>;
}

async function startServers(): Promise<{ child: ChildProcess; addresses: Record<string, string> }> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(import.meta.dirname, 'memory-servers.ts')],
    {
      stdio: ['pipe', 'pipe', 'inherit'],
    },
  );
  const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
  const [line] = (await once(lines, 'line')) as [string];
  return { child, addresses: JSON.parse(line) as Record<string, string> };
}

async function measure(): Promise<{
  samples: Map<FunctionName, InvocationProfile[]>;
  configured: Map<FunctionName, number>;
}> {
  const { child, addresses } = await startServers();
  const counters: Counters = { dashscopeCalls: 0, downloads: 0, downloadBytes: 0, s3Calls: 0, events: 0 };
  const dashscopeUrl = addresses.dashscopeUrl ?? '';
  const countingFetch: typeof fetch = async (input, init) => {
    const url = input instanceof Request ? input.url : String(input);
    const response = await fetch(input, init);
    if (url.startsWith(dashscopeUrl)) counters.dashscopeCalls += 1;
    else {
      counters.downloads += 1;
      counters.downloadBytes += Number(response.headers.get('content-length') ?? 0);
    }
    return response;
  };
  const s3 = localS3Client(addresses.s3Endpoint ?? '');
  s3.middlewareStack.add(
    (next) => async (args) => {
      counters.s3Calls += 1;
      return next(args);
    },
    { step: 'initialize', name: 'countRequests' },
  );
  const samples = new Map<FunctionName, InvocationProfile[]>(NAMES.map((name) => [name, []]));
  let recording = false;
  const runner = createLocalRunner({
    dashscope: {
      baseUrl: dashscopeUrl,
      apiKey: addresses.apiKey ?? '',
      resultHosts: ['127.0.0.1'],
      allowHttpResults: true,
      runTimeModel: emulatorRunTimeModel(EMULATOR_SPEED),
    },
    s3: { client: s3, bucket: addresses.bucket ?? '' },
    events: {
      publish: async () => {
        counters.events += 1;
      },
    },
    fetch: countingFetch,
    interceptTask: async (state, invoke) => {
      const name = (FUNCTIONS as Record<string, FunctionName | undefined>)[state];
      if (!name) return invoke();
      const before = { ...counters };
      const cpu = process.cpuUsage();
      try {
        return await invoke();
      } finally {
        const used = process.cpuUsage(cpu);
        if (recording)
          samples.get(name)?.push({
            cpuMs: (used.user + used.system) / 1000,
            dashscopeCalls: counters.dashscopeCalls - before.dashscopeCalls,
            downloads: counters.downloads - before.downloads,
            downloadBytes: counters.downloadBytes - before.downloadBytes,
            s3Calls: counters.s3Calls - before.s3Calls,
            events: counters.events - before.events,
          });
      }
    },
  });
  try {
    for (let i = 0; i < WARM_UP_EXECUTIONS + MEASURED_EXECUTIONS; i++) {
      recording = i >= WARM_UP_EXECUTIONS;
      const outcome = await runner.run(`bench-memory-${Date.now()}-${i}`, REQUEST);
      if (outcome.status !== 'SUCCEEDED')
        throw new Error(`execution ${i} failed: ${outcome.error}: ${outcome.cause}`);
    }
  } finally {
    child.stdin?.end();
    await once(child, 'exit');
  }
  return { samples, configured: configuredMemory(runner) };
}

/** Each function's MemorySize in the synthesized template, found through the Task state that calls it. */
function configuredMemory(runner: ReturnType<typeof createLocalRunner>): Map<FunctionName, number> {
  const memory = new Map<FunctionName, number>();
  for (const [state, name] of Object.entries(FUNCTIONS)) {
    const resource = (runner.definition.States[state] as { Resource?: string } | undefined)?.Resource ?? '';
    const logicalId = /function:(.+)$/.exec(resource)?.[1] ?? '';
    memory.set(name, Number(runner.template.Resources[logicalId]?.Properties?.MemorySize ?? 128));
  }
  return memory;
}

/** The median invocation: each count's median, so one odd invocation does not skew the profile. */
function medianProfile(samples: readonly InvocationProfile[]): InvocationProfile {
  const median = (key: keyof InvocationProfile) =>
    quantile(
      samples.map((sample) => sample[key]).sort((a, b) => a - b),
      0.5,
    );
  return {
    cpuMs: median('cpuMs'),
    dashscopeCalls: median('dashscopeCalls'),
    downloads: median('downloads'),
    downloadBytes: median('downloadBytes'),
    s3Calls: median('s3Calls'),
    events: median('events'),
  };
}

function rows(
  samples: Map<FunctionName, InvocationProfile[]>,
  configured: Map<FunctionName, number>,
): MemoryRow[] {
  return NAMES.map((name) => {
    const measured = samples.get(name) ?? [];
    const profile = medianProfile(measured);
    // Poll queries several times per invocation (tail polling): the delay of each answer counts.
    const chosen = chooseMemory(profile, MEMORY_SIZES_MB, NETWORK, LATENCY_ALLOWANCE_MS, name === 'poll');
    return {
      function: name,
      invocations: measured.length,
      cpuMs: round(profile.cpuMs, 1),
      networkMs: round(networkMs(profile, NETWORK), 1),
      configuredMb: configured.get(name) ?? 0,
      chosenMb: chosen.memoryMb,
      sizes: MEMORY_SIZES_MB.map((memoryMb) => {
        const durationMs = projectedDurationMs(profile, memoryMb, NETWORK);
        return {
          memoryMb,
          durationMs: round(durationMs, 0),
          usdPerMillion: round(usdPerMillion(durationMs, memoryMb), 3),
        };
      }),
    };
  });
}

async function main(): Promise<void> {
  const json = process.argv.includes('--json');
  const started = performance.now();
  const { samples, configured } = await measure();
  const report = rows(samples, configured);
  if (json) {
    process.stdout.write(`${JSON.stringify({ network: NETWORK, functions: report }, null, 2)}\n`);
    return;
  }
  const headers = [
    'function',
    'invocations',
    'CPU ms (1 vCPU)',
    'network ms',
    ...MEMORY_SIZES_MB.map((size) => `${size} MB: ms / $ per 1M`),
    'configured MB',
    'cheapest within 100 ms (poll: per query)',
  ];
  const table = markdownTable(
    headers,
    report.map((row) => [
      row.function,
      row.invocations,
      row.cpuMs,
      row.networkMs,
      ...row.sizes.map((size) => `${size.durationMs} / ${size.usdPerMillion}`),
      row.configuredMb,
      row.chosenMb,
    ]),
  );
  const mismatched = report.filter((row) => row.configuredMb !== row.chosenMb);
  const out = [
    '## bench:memory',
    '',
    `Median of ${MEASURED_EXECUTIONS} executions (after ${WARM_UP_EXECUTIONS} warm-up) of ${JSON.stringify(REQUEST)} through the local runner, ` +
      `emulator at ×${EMULATOR_SPEED}. Duration(m) = CPU × max(1, ${FULL_VCPU_MB} / m) + network; network assumed: ` +
      `DashScope ${NETWORK.dashscopeRoundTripMs} ms per call, S3 ${NETWORK.s3RequestMs} ms, PutEvents ${NETWORK.eventsRequestMs} ms, ` +
      `downloads ${NETWORK.downloadBytesPerMs / 1000} MB/s. Poll's sleeps between tail queries are not included (same at every size).`,
    '',
    table,
    '',
    mismatched.length === 0
      ? 'Every configured size is the one the projection chooses.'
      : `Configured differently from the projection: ${mismatched.map((row) => `${row.function} (${row.configuredMb} MB, projection ${row.chosenMb} MB)`).join(', ')}.`,
    '',
    `(${round((performance.now() - started) / 1000, 1)} s)`,
  ];
  process.stdout.write(`${out.join('\n')}\n`);
}

await main();
