/**
 * `npm run bench:persist [-- --json]`: throughput and peak RSS of the persist code path
 * (`copyImage`: fetch → size-capping sha256 meter → streamed PutObject) copying 4 × 5 MiB and
 * 1 × 200 MiB images from a local HTTP server into s3rver, beside two baselines on the same bytes:
 * a plain stream to a file, and a plain streamed PutObject without our meter.
 *
 * Everything stays on 127.0.0.1. The image server and s3rver run in this process; every measured
 * copy runs in a fresh child process (bench/persist-worker.ts), so its RSS is its own.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startLocalS3 } from '../local/s3.js';
import { quantile, Random } from './lib/random.js';
import { markdownTable, round } from './lib/table.js';

const MIB = 1024 * 1024;
const REPETITIONS = 5;
const MODES = [
  { mode: 'file', label: 'plain stream to a file (baseline)' },
  { mode: 'put', label: 'plain streamed PutObject to s3rver' },
  { mode: 'persist', label: 'persist: copyImage to s3rver' },
] as const;
const CASES = [
  { name: '4 × 5 MiB', sizes: [5, 5, 5, 5].map((mib) => mib * MIB) },
  { name: '1 × 200 MiB', sizes: [200 * MIB] },
];
/** The targets for the 200 MiB image. */
const MAX_RSS_GROWTH_MIB = 64;
const MIN_THROUGHPUT_SHARE = 0.8;

interface WorkerResult {
  readonly bytes: number;
  readonly seconds: number;
  /** CPU the copying process used. */
  readonly cpuSeconds: number;
  /** CPU this process (the image server and s3rver) used meanwhile. */
  serverCpuSeconds: number;
  readonly rssBefore: number;
  readonly rssPeak: number;
}

export interface PersistRow {
  readonly case: string;
  readonly copy: string;
  /** Median of the repetitions, MiB/s. */
  readonly mibPerSecond: number;
  /** Median and worst growth of RSS over the copy, MiB. */
  readonly rssGrowthMib: number;
  readonly rssGrowthMaxMib: number;
  /** Throughput relative to the plain file copy of the same case. */
  readonly shareOfFileCopy: number;
  /** Busy share of one core, median: the copying process, and the image server plus s3rver. */
  readonly copierCpu: number;
  readonly serverCpu: number;
}

/** Serves `/img/<bytes>/<seed>`: deterministic PNG-typed bytes of that length, streamed with back-pressure. */
function startImageServer(): Promise<Server> {
  const block = Buffer.alloc(MIB);
  const random = new Random(7);
  for (let i = 0; i < block.length; i++) block[i] = Math.floor(random.next() * 256);
  Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]).copy(block);
  const server = createServer((request, response) => {
    const match = /^\/img\/(\d+)\/\d+$/.exec(request.url ?? '');
    if (!match) {
      response.writeHead(404).end();
      return;
    }
    const total = Number(match[1]);
    response.writeHead(200, { 'content-type': 'image/png', 'content-length': total });
    let sent = 0;
    const pump = () => {
      while (sent < total) {
        const chunk = block.subarray(0, Math.min(block.length, total - sent));
        sent += chunk.length;
        if (!response.write(chunk)) {
          response.once('drain', pump);
          return;
        }
      }
      response.end();
    };
    pump();
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

async function runWorker(args: string[]): Promise<WorkerResult> {
  const cpuBefore = process.cpuUsage();
  const result = await spawnWorker(args);
  const cpu = process.cpuUsage(cpuBefore);
  // The child's start-up and warm-up fall outside its copy; so does part of this: an upper bound.
  result.serverCpuSeconds = (cpu.user + cpu.system) / 1e6;
  return result;
}

function spawnWorker(args: string[]): Promise<WorkerResult> {
  const worker = path.join(import.meta.dirname, 'persist-worker.ts');
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--expose-gc', worker, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) reject(new Error(`worker ${args[0]} exited ${code}: ${stderr.trim()}`));
      else resolve(JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as WorkerResult);
    });
  });
}

async function main(): Promise<void> {
  const json = process.argv.includes('--json');
  // Node 20 is supported here until the SDK drops it (see the README); keep the report clean.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
  const dir = await mkdtemp(path.join(tmpdir(), 'bench-persist-s3-'));
  const s3 = await startLocalS3({ directory: dir });
  const images = await startImageServer();
  const origin = `http://127.0.0.1:${(images.address() as AddressInfo).port}`;
  const rows: PersistRow[] = [];
  try {
    for (const testCase of CASES) {
      const urls = testCase.sizes.map((bytes, index) => `${origin}/img/${bytes}/${index}`);
      // Modes take turns, so that disk write-back and caches weigh on each of them alike.
      const runs = new Map<string, WorkerResult[]>(MODES.map(({ mode }) => [mode, []]));
      for (let i = 0; i < REPETITIONS; i++) {
        for (const { mode } of MODES)
          runs.get(mode)?.push(await runWorker([mode, s3.endpoint, s3.bucket, ...urls]));
      }
      const rateOf = (mode: string) =>
        quantile(
          (runs.get(mode) ?? []).map((run) => run.bytes / MIB / run.seconds).sort((a, b) => a - b),
          0.5,
        );
      for (const { mode, label } of MODES) {
        const growths = (runs.get(mode) ?? [])
          .map((run) => (run.rssPeak - run.rssBefore) / MIB)
          .sort((a, b) => a - b);
        const share = (key: 'cpuSeconds' | 'serverCpuSeconds') =>
          quantile(
            (runs.get(mode) ?? []).map((run) => run[key] / run.seconds).sort((a, b) => a - b),
            0.5,
          );
        rows.push({
          case: testCase.name,
          copy: label,
          mibPerSecond: round(rateOf(mode), 1),
          rssGrowthMib: round(quantile(growths, 0.5), 1),
          rssGrowthMaxMib: round(growths.at(-1) ?? Number.NaN, 1),
          shareOfFileCopy: round(rateOf(mode) / rateOf('file'), 2),
          copierCpu: round(share('cpuSeconds'), 2),
          serverCpu: round(share('serverCpuSeconds'), 2),
        });
      }
    }
  } finally {
    images.closeAllConnections();
    await new Promise((resolve) => images.close(resolve));
    await s3.close();
    await rm(dir, { recursive: true, force: true });
  }

  if (json) {
    process.stdout.write(`${JSON.stringify({ cases: rows }, null, 2)}\n`);
    return;
  }
  const big = rows.find((row) => row.case === '1 × 200 MiB' && row.copy.startsWith('persist'));
  const lines = [
    '## bench:persist',
    '',
    `Median of ${REPETITIONS} runs, each a fresh process; RSS growth = peak RSS during the copies − RSS before (after a warm-up copy and a GC).`,
    '',
    markdownTable(
      [
        'case',
        'copy',
        'MiB/s',
        'RSS growth MiB',
        'worst RSS growth MiB',
        'throughput vs file copy',
        'copier CPU',
        'server + s3rver CPU',
      ],
      rows.map((row) => [
        row.case,
        row.copy,
        row.mibPerSecond,
        row.rssGrowthMib,
        row.rssGrowthMaxMib,
        `${Math.round(row.shareOfFileCopy * 100)} %`,
        `${Math.round(row.copierCpu * 100)} %`,
        `≤ ${Math.round(row.serverCpu * 100)} %`,
      ]),
    ),
    '',
    'Targets (200 MiB image):',
    '',
  ];
  if (big) {
    const rssOk = big.rssGrowthMaxMib <= MAX_RSS_GROWTH_MIB;
    const rateOk = big.shareOfFileCopy >= MIN_THROUGHPUT_SHARE;
    lines.push(
      `- ${rssOk ? 'met' : 'MISSED'}: RSS grows by ${big.rssGrowthMaxMib} MiB at worst (target ≤ ${MAX_RSS_GROWTH_MIB} MiB)`,
      `- ${rateOk ? 'met' : 'MISSED'}: ${Math.round(big.shareOfFileCopy * 100)} % of the plain file copy's throughput (target ≥ ${MIN_THROUGHPUT_SHARE * 100} %)`,
    );
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

await main();
