/**
 * `npm run bench:poll [-- --json]`: the poll policies compared on a deterministic simulation of
 * DashScope's documented queue (one runner, first in first out, 2 submits/s, 20 task queries/s),
 * driving the real Submit and Poll code (`submitGeneration`, `pollGeneration`, the very
 * `nextPollSeconds` the Lambdas use) through the Step Functions workflow synthesized from the CDK
 * app, behind admission control (the real `planGrants`, applied by a simulated dispatcher, on one
 * or more accounts). See bench/RESULTS.md for what the numbers mean.
 */
import { adaptivePollPolicy, type PollPolicy } from '../functions/shared/poll-policy.js';
import { DEFAULT_RUN_TIME_MODEL } from '../functions/shared/run-time-estimate.js';
import { quantile } from './lib/random.js';
import { markdownTable, round } from './lib/table.js';
import {
  ALL_IN_ASSUMPTIONS,
  type AllInCost,
  allInCost,
  type FixedLine,
  fixedMonthlyCost,
} from './poll-sim/all-in.js';
import { DEFAULT_TRUTH } from './poll-sim/dashscope.js';
import { ADMISSION_SETTINGS, DISPATCHER_ASSUMPTIONS } from './poll-sim/dispatcher.js';
import { POLICIES } from './poll-sim/policies.js';
import {
  USD_PER_LAMBDA_GB_SECOND,
  USD_PER_LAMBDA_REQUEST,
  USD_PER_STATE_TRANSITION,
} from './poll-sim/pricing.js';
import {
  type AccountPeaks,
  LATENCY_MS,
  type Scenario,
  simulateTrial,
  type TrialResult,
} from './poll-sim/simulate.js';
import {
  ADMIT_STATE,
  synthesizeTemplate,
  synthesizeWorkflowShape,
  type WorkflowShape,
} from './poll-sim/workflow-shape.js';
import { WORKLOADS, type Workload } from './poll-sim/workloads.js';

/** One policy's numbers on one workload, every trial pooled. */
export interface PolicyReport {
  readonly name: string;
  /** Detection lag: seconds from DashScope's end_time to the poll that sees it. */
  readonly lagP50: number;
  readonly lagP95: number;
  readonly lagMax: number;
  /** Seconds from DashScope's start of the task to the poll that records it running (p95). */
  readonly startLagP95: number;
  /** Task queries by the Poll function per generation. */
  readonly pollsPerJob: number;
  /** Highest number of task-API calls in any 1-second window (the account allows 20). */
  readonly peakQps: number;
  readonly transitionsPerJob: number;
  /** Orchestration: Step Functions transitions plus the Submit and Poll Lambdas, per 1,000 generations. */
  readonly usdPer1000: number;
  /**
   * Everything a generation costs on AWS, per 1,000 (see bench/poll-sim/all-in.ts), and by line,
   * with a client that lists its waiting generations once a minute (each with its place).
   */
  readonly usdPer1000AllIn: number;
  readonly allInPer1000: Omit<AllInCost, 'total'>;
  /** The same with a client that GETs each waiting generation once a minute instead. */
  readonly usdPer1000AllInGetEach: number;
  /** DynamoDB units of the admission queue per generation (the lease, counters and recent tasks included). */
  readonly queueWriteUnitsPerJob: number;
  readonly queueReadUnitsPerJob: number;
  readonly maxHistoryEvents: number;
  /** Every task-API call per generation: polls, queue listings, Persist's query. */
  readonly queriesPerJob: number;
  /** 429 answers the account gave to task-API calls, per trial. */
  readonly throttledPerTrial: number;
  /** 429 answers to submits, per trial (each retried by Submit's Retry rule). */
  readonly submitsThrottledPerTrial: number;
  readonly lambdaGbSecondsPerJob: number;
  /** Executions that did not succeed (retries exhausted, deadline, poll cap): should be 0. */
  readonly failedExecutions: number;
  /** Seconds from the first execution's start to the last image stored (mean over trials). */
  readonly makespanSeconds: number;
  /** 95th percentile of the seconds from an interactive request to its task RUNNING; null without any. */
  readonly interactiveStartP95: number | null;
  /** The highest number of submits in any 1-second window on any one account (DashScope allows 2). */
  readonly peakSubmitsPerSecond: number;
  /** Each account's peaks, the highest over the trials. */
  readonly accounts: readonly AccountPeaks[];
  /** Dispatcher Lambda invocations (kicks and sweeps) per generation. */
  readonly dispatcherInvocationsPerJob: number;
  /** Each batch of a workload with batches (two-batches, batch-10000), from its first trial. */
  readonly batches?: readonly BatchReport[];
  /**
   * The batches' completion estimates, as fractions of the time left when read (see
   * {@link BatchReport}): the median and the worst of their reads at 10 %, 50 % and 90 % of each run.
   */
  readonly etaErrorP50?: number;
  readonly etaErrorMax?: number;
  /** A batch's client (the batch workloads): its GETs of the batch per generation, and their mean read units. */
  readonly batchGetsPerJob?: number;
  readonly readUnitsPerBatchGet?: number;
}

/** One batch of a workload, under one policy (its first trial: the batch workloads have one). */
export interface BatchReport {
  readonly name: string;
  readonly lines: number;
  /** Seconds from the batch's first request to its last image stored. */
  readonly makespanSeconds: number;
  /** Its executions that did not succeed: should be 0. */
  readonly failed: number;
  /** The same batch's makespan with no other batch (the workload's `aloneBatches`, adaptive only). */
  readonly aloneMakespanSeconds?: number;
  /**
   * The error of the batch's `estimatedCompletionAt` (the API's own code over the simulated state)
   * as its client read it once a minute, as a fraction of the time left then
   * (|estimate − end| / (end − read)): at 10 %, 50 % and 90 % of its run, their median and worst,
   * and the worst of every read from 10 % to 90 %. With admission only.
   */
  readonly etaErrorAt?: readonly number[];
  readonly etaErrorP50?: number;
  readonly etaErrorMax?: number;
  readonly etaErrorWorstFrom10To90?: number;
}

export interface WorkloadReport {
  readonly name: string;
  readonly policies: PolicyReport[];
}

type NumericKey = {
  [K in keyof TrialResult]: TrialResult[K] extends number ? K : never;
}[keyof TrialResult];

async function runWorkload(
  workload: Workload,
  policy: PollPolicy,
  shape: WorkflowShape,
  scenario: Scenario = {},
): Promise<PolicyReport> {
  const trials: TrialResult[] = [];
  for (let trial = 0; trial < workload.trials; trial++) {
    trials.push(await simulateTrial(workload, trial, policy, shape, scenario));
  }
  const total = (key: NumericKey) => trials.reduce((sum, result) => sum + result[key], 0);
  const jobs = total('jobs');
  const lags = trials.flatMap((result) => result.lags).sort((a, b) => a - b);
  const startLags = trials.flatMap((result) => result.startLags).sort((a, b) => a - b);
  const usdPerJob =
    (total('transitions') * USD_PER_STATE_TRANSITION +
      (total('lambdaGbSeconds') + total('dispatcherGbSeconds')) * USD_PER_LAMBDA_GB_SECOND +
      (total('lambdaRequests') + total('dispatcherInvocations')) * USD_PER_LAMBDA_REQUEST) /
    jobs;
  const interactiveStarts = trials.flatMap((result) => result.startWaits.interactive).sort((a, b) => a - b);
  const highest = (index: number, key: Exclude<keyof AccountPeaks, 'name'>) =>
    Math.max(...trials.map((result) => result.accounts[index]?.[key] ?? 0));
  const accounts = (trials[0]?.accounts ?? []).map((account, index) => ({
    name: account.name,
    peakQueriesPerSecond: highest(index, 'peakQueriesPerSecond'),
    peakSubmitsPerSecond: highest(index, 'peakSubmitsPerSecond'),
    peakOutstandingTasks: highest(index, 'peakOutstandingTasks'),
  }));
  const usage = {
    transitions: total('transitions') / jobs,
    lambdaGbSeconds: total('lambdaGbSeconds') / jobs,
    lambdaRequests: total('lambdaRequests') / jobs,
    dispatcherInvocations: total('dispatcherInvocations') / jobs,
    dispatcherGbSeconds: total('dispatcherGbSeconds') / jobs,
    queueWriteUnits: total('queueWriteUnits') / jobs,
    queueReadUnits: total('queueReadUnits') / jobs,
    polls: total('polls') / jobs,
    visibleChanges: total('visibleChanges') / jobs,
    apiGets: total('apiGets') / jobs,
    apiGetsQueued: total('apiGetsQueued') / jobs,
    apiListPages: total('apiListPages') / jobs,
    apiListedChecks: total('apiListedChecks') / jobs,
    images: total('images') / jobs,
    apiCreates: total('apiCreates') / jobs,
    apiBatchGets: total('apiBatchGets') / jobs,
    apiBatchReadUnits: total('apiBatchReadUnits') / jobs,
  };
  const { total: allInPerJob, ...allInLines } = allInCost(usage, shape.sizing, workload.client ?? 'list');
  const batches = await batchReports(workload, policy, shape, scenario, trials[0]);
  const getEachPerJob = allInCost(usage, shape.sizing, 'get-each').total;
  return {
    name: policy.name,
    lagP50: round(quantile(lags, 0.5), 2),
    lagP95: round(quantile(lags, 0.95), 2),
    lagMax: round(lags.at(-1) ?? Number.NaN, 2),
    startLagP95: round(quantile(startLags, 0.95), 2),
    pollsPerJob: round(total('polls') / jobs, 1),
    peakQps: Math.max(...trials.map((result) => result.peakQueriesPerSecond)),
    transitionsPerJob: round(total('transitions') / jobs, 1),
    usdPer1000: round(usdPerJob * 1000, 3),
    usdPer1000AllIn: round(allInPerJob * 1000, 3),
    allInPer1000: Object.fromEntries(
      Object.entries(allInLines).map(([line, usd]) => [line, round(usd * 1000, 4)]),
    ) as Omit<AllInCost, 'total'>,
    usdPer1000AllInGetEach: round(getEachPerJob * 1000, 3),
    queueWriteUnitsPerJob: round(usage.queueWriteUnits, 1),
    queueReadUnitsPerJob: round(usage.queueReadUnits, 1),
    maxHistoryEvents: Math.max(...trials.map((result) => result.maxHistoryEvents)),
    queriesPerJob: round(total('queries') / jobs, 1),
    throttledPerTrial: round(total('throttled') / trials.length, 1),
    submitsThrottledPerTrial: round(total('submitsThrottled') / trials.length, 1),
    lambdaGbSecondsPerJob: round(total('lambdaGbSeconds') / jobs, 3),
    failedExecutions: total('failed'),
    makespanSeconds: round(total('makespanSeconds') / trials.length, 0),
    interactiveStartP95: interactiveStarts.length === 0 ? null : round(quantile(interactiveStarts, 0.95), 1),
    peakSubmitsPerSecond: Math.max(...accounts.map((account) => account.peakSubmitsPerSecond)),
    accounts,
    dispatcherInvocationsPerJob: round(total('dispatcherInvocations') / jobs, 2),
    ...(batches.length > 0 ? { batches } : {}),
    ...etaSummary(batches),
    ...(total('apiBatchGets') > 0
      ? {
          batchGetsPerJob: round(total('apiBatchGets') / jobs, 4),
          readUnitsPerBatchGet: round(total('apiBatchReadUnits') / total('apiBatchGets'), 1),
        }
      : {}),
  };
}

/** The median and worst of the batches' ETA errors at 10 %, 50 % and 90 % of their runs. */
function etaSummary(batches: readonly BatchReport[]): { etaErrorP50?: number; etaErrorMax?: number } {
  const errors = batches.flatMap((batch) => batch.etaErrorAt ?? []).sort((a, b) => a - b);
  if (errors.length === 0) return {};
  return { etaErrorP50: round(quantile(errors, 0.5), 4), etaErrorMax: round(errors.at(-1) as number, 4) };
}

/** The batches of a workload's first trial; with the makespan of each of `alone` when it runs by itself. */
async function batchReports(
  workload: Workload,
  policy: PollPolicy,
  shape: WorkflowShape,
  scenario: Scenario,
  trial: TrialResult | undefined,
): Promise<BatchReport[]> {
  const reports: BatchReport[] = [];
  for (const { eta, ...batch } of trial?.batches ?? []) {
    const errors = eta?.at.filter((error) => Number.isFinite(error)) ?? [];
    const report: BatchReport = {
      ...batch,
      makespanSeconds: round(batch.makespanSeconds, 0),
      ...(eta && errors.length > 0
        ? {
            etaErrorAt: eta.at.map((error) => round(error, 4)),
            etaErrorP50: round(
              quantile(
                [...errors].sort((a, b) => a - b),
                0.5,
              ),
              4,
            ),
            etaErrorMax: round(Math.max(...errors), 4),
            etaErrorWorstFrom10To90: round(eta.worstFrom10To90, 4),
          }
        : {}),
    };
    if (!workload.aloneBatches?.includes(batch.name) || policy.name !== adaptivePollPolicy.name) {
      reports.push(report);
      continue;
    }
    // The same batch by itself: its lines and run times as in the workload (drawn in job order).
    const alone: Workload = {
      ...workload,
      jobs: (index) => workload.jobs(index).filter((job) => job.batch?.name === batch.name),
    };
    const result = await simulateTrial(alone, 0, policy, shape, scenario);
    reports.push({ ...report, aloneMakespanSeconds: round(result.batches[0]?.makespanSeconds ?? 0, 0) });
  }
  return reports;
}

/** The policies a workload runs under: all, or those it names (admission's batch workloads: adaptive). */
function policiesOf(workload: Workload): readonly PollPolicy[] {
  return POLICIES.filter((policy) => workload.policies?.includes(policy.name) ?? true);
}

function table(workload: Workload, report: WorkloadReport): string {
  const rows = report.policies.map((policy) => [
    policy.name,
    policy.lagP50,
    policy.lagP95,
    policy.lagMax,
    policy.startLagP95,
    policy.pollsPerJob,
    policy.queriesPerJob,
    policy.peakQps,
    policy.throttledPerTrial,
    policy.transitionsPerJob,
    policy.lambdaGbSecondsPerJob,
    policy.usdPer1000,
    policy.usdPer1000AllIn,
    policy.usdPer1000AllInGetEach,
    policy.maxHistoryEvents,
    policy.dispatcherInvocationsPerJob,
    policy.peakSubmitsPerSecond,
    policy.makespanSeconds,
    policy.interactiveStartP95 ?? '–',
    policy.failedExecutions,
  ]);
  const headers = [
    'policy',
    'lag p50 s',
    'lag p95 s',
    'lag max s',
    'running seen p95 s',
    'polls/job',
    'queries/job',
    'peak q/s',
    '429s/run',
    'transitions/job',
    'GB-s/job',
    '$/1000 gen',
    '$/1000 all-in',
    '$/1000 all-in, GET each',
    'max events',
    'dispatcher invocations/job',
    'peak submits/s',
    'makespan s',
    'interactive start p95 s',
    'failed',
  ];
  const perAccount =
    workload.accounts === undefined || workload.accounts < 2
      ? []
      : report.policies.map(
          (policy) =>
            `\n> ${policy.name}, per account: ${policy.accounts
              .map(
                (account) =>
                  `${account.name} ${account.peakQueriesPerSecond} q/s, ${account.peakSubmitsPerSecond} submits/s`,
              )
              .join('; ')}`,
        );
  const perBatch = report.policies.flatMap((policy) =>
    policy.batches
      ? [
          `\n> ${policy.name}, per batch: ${policy.batches
            .map(
              (batch) =>
                `${batch.name} (${batch.lines} lines) done in ${batch.makespanSeconds} s${batch.aloneMakespanSeconds === undefined ? '' : ` (${batch.aloneMakespanSeconds} s alone)`}, ${batch.failed} failed${batch.etaErrorAt ? `, ETA error ${batch.etaErrorAt.map(percent).join(' / ')} of the time left at 10 / 50 / 90 % of its run (worst read from 10 to 90 %: ${percent(batch.etaErrorWorstFrom10To90 ?? Number.NaN)})` : ''}`,
            )
            .join('; ')}`,
        ]
      : [],
  );
  const failures = report.policies.filter((policy) => policy.failedExecutions > 0);
  const note = failures.map(
    (policy) => `\n> ${policy.name}: ${policy.failedExecutions} execution(s) did not succeed`,
  );
  return `### ${workload.name}: ${workload.description}\n\n${markdownTable(headers, rows)}${[...perAccount, ...perBatch, ...note].join('')}`;
}

/** The issue's targets (#13), checked against the numbers (never by a timed test). */
function targets(reports: WorkloadReport[]): string[] {
  const find = (workload: string, policy: string) =>
    reports.find((report) => report.name === workload)?.policies.find((entry) => entry.name === policy);
  const lines: string[] = [];
  const check = (ok: boolean, text: string) => lines.push(`- ${ok ? 'met' : 'MISSED'}: ${text}`);
  const single = find('single', 'adaptive');
  if (single) {
    check(single.lagP95 <= 0.5, `single: lag p95 ${single.lagP95} s (target ≤ 0.5 s)`);
    check(
      single.transitionsPerJob <= 16,
      `single: ${single.transitionsPerJob} transitions/job (target ≤ 16)`,
    );
    check(single.usdPer1000 <= 0.45, `single: $${single.usdPer1000} per 1,000 (target ≤ $0.45)`);
    // #24: the index shows a task running within one poll of its start, not at its first end-aimed poll.
    check(
      single.startLagP95 <= 2,
      `single: running seen ${single.startLagP95} s after the task started, p95 (target ≤ 2 s, #24)`,
    );
  }
  const burst = find('burst-100', 'adaptive');
  if (burst) {
    check(burst.lagP95 <= 0.5, `burst-100: lag p95 ${burst.lagP95} s (target ≤ 0.5 s)`);
    check(
      burst.transitionsPerJob <= 30,
      `burst-100: ${burst.transitionsPerJob} transitions/job (target ≤ 30)`,
    );
    check(burst.usdPer1000 <= 0.8, `burst-100: $${burst.usdPer1000} per 1,000 (target ≤ $0.80)`);
    check(burst.peakQps <= 20, `burst-100: peak ${burst.peakQps} queries/s (target ≤ 20)`);
    check(burst.throttledPerTrial === 0, `burst-100: ${burst.throttledPerTrial} 429s per run (target 0)`);
  }
  const allIn = reports.every((report) =>
    report.policies.every((policy) => Number.isFinite(policy.usdPer1000AllIn)),
  );
  check(allIn, 'usdPer1000AllIn for every workload and policy');
  return lines;
}

/** The targets of admission control (#11) for `adaptive`, met or missed and by how much. */
function admissionTargets(reports: WorkloadReport[]): string[] {
  const adaptive = reports.flatMap((report) => {
    const entry = report.policies.find((policy) => policy.name === adaptivePollPolicy.name);
    return entry ? [{ workload: report.name, entry }] : [];
  });
  const find = (workload: string) => adaptive.find((each) => each.workload === workload)?.entry;
  const lines: string[] = [];
  const check = (ok: boolean, text: string) => lines.push(`- ${ok ? 'met' : 'MISSED'}: ${text}`);
  const failed = adaptive.filter((each) => each.entry.failedExecutions > 0);
  check(
    failed.length === 0,
    failed.length === 0
      ? `0 failed executions in all ${adaptive.length} workloads`
      : `failed executions: ${failed.map((each) => `${each.workload} ${each.entry.failedExecutions}`).join(', ')} (target 0)`,
  );
  const burst = find('burst-1000');
  if (burst)
    check(
      burst.transitionsPerJob <= 40,
      `burst-1000: ${burst.transitionsPerJob} transitions/job (target ≤ 40${over(burst.transitionsPerJob, 40)})`,
    );
  const pool = find('pool-3-burst-1000');
  if (burst && pool) {
    const ratio = round(pool.makespanSeconds / burst.makespanSeconds, 3);
    check(
      ratio <= 0.4,
      `pool-3-burst-1000: makespan ${pool.makespanSeconds} s = ${ratio} × burst-1000's ${burst.makespanSeconds} s (target ≤ 0.40${over(ratio, 0.4)})`,
    );
  }
  const priority = find('priority');
  if (priority) {
    const p95 = priority.interactiveStartP95;
    check(
      p95 !== null && p95 <= 60,
      `priority: interactive start p95 ${p95} s (target ≤ 60 s${p95 === null ? '' : over(p95, 60)})`,
    );
  }
  const queries = Math.max(...adaptive.map((each) => each.entry.peakQps));
  const submits = Math.max(...adaptive.map((each) => each.entry.peakSubmitsPerSecond));
  check(
    queries <= 20,
    `peak ${queries} task-API calls/s on any account, any workload (target ≤ 20${over(queries, 20)})`,
  );
  check(
    submits <= 2,
    `peak ${submits} submits/s on any account, any workload (target ≤ 2${over(submits, 2)})`,
  );
  const outstanding = Math.max(
    ...adaptive.flatMap((each) => each.entry.accounts.map((account) => account.peakOutstandingTasks)),
  );
  check(
    outstanding <= ADMISSION_SETTINGS.depth,
    `at most ${outstanding} tasks outstanding at once on any account (the depth, ${ADMISSION_SETTINGS.depth})`,
  );
  return lines;
}

/** `5000` as `5,000`. */
const count = (value: number) => value.toLocaleString('en-US');

/** The targets of fair share across batches (#23, item 6), for `adaptive`. */
function batchTargets(reports: WorkloadReport[]): string[] {
  const batchesOf = (workload: string) =>
    reports
      .find((report) => report.name === workload)
      ?.policies.find((policy) => policy.name === adaptivePollPolicy.name)?.batches ?? [];
  const lines: string[] = [];
  const check = (ok: boolean, text: string) => lines.push(`- ${ok ? 'met' : 'MISSED'}: ${text}`);
  const two = batchesOf('two-batches');
  const small = two.find((batch) => batch.name === 'small');
  const big = two.find((batch) => batch.name === 'big');
  if (small)
    check(
      small.makespanSeconds <= 900,
      `two-batches: the ${count(small.lines)}-line batch done in ${small.makespanSeconds} s (target ≤ 900 s${over(small.makespanSeconds, 900)})`,
    );
  if (big?.aloneMakespanSeconds !== undefined) {
    const ratio = round(big.makespanSeconds / big.aloneMakespanSeconds, 4);
    check(
      ratio <= 1.02,
      `two-batches: the ${count(big.lines)}-line batch done in ${big.makespanSeconds} s = ${ratio} × its ${big.aloneMakespanSeconds} s alone (target ≤ 1.02${over(ratio, 1.02)})`,
    );
  }
  for (const workload of ['two-batches', 'batch-10000']) {
    const batches = batchesOf(workload);
    if (batches.length === 0) continue;
    const failed = batches.reduce((sum, batch) => sum + batch.failed, 0);
    check(
      failed === 0,
      `${workload}: ${failed} failed of ${count(batches.reduce((sum, batch) => sum + batch.lines, 0))} lines (target 0)`,
    );
  }
  // #23 item 8: the batch's estimatedCompletionAt, read at 10 %, 50 % and 90 % of its run, within
  // 10 % of the time left then.
  for (const batch of batchesOf('batch-10000')) {
    if (batch.etaErrorMax === undefined) continue;
    check(
      batch.etaErrorMax <= 0.1,
      `batch-10000: estimatedCompletionAt off by ${(batch.etaErrorAt ?? []).map(percent).join(', ')} of the time left, read at 10, 50 and 90 % of the run (p50 ${percent(batch.etaErrorP50 ?? Number.NaN)}, max ${percent(batch.etaErrorMax)}; target ≤ 10 %${over(batch.etaErrorMax, 0.1)}; worst of every read from 10 to 90 %: ${percent(batch.etaErrorWorstFrom10To90 ?? Number.NaN)})`,
    );
  }
  return lines;
}

/** 0.0123 as `1.23 %`. */
const percent = (fraction: number) => `${round(fraction * 100, 2)} %`;

/** The targets of #22 (the cost model counts what runs), for `adaptive`. */
function costTargets(reports: WorkloadReport[]): string[] {
  const find = (workload: string) =>
    reports
      .find((report) => report.name === workload)
      ?.policies.find((policy) => policy.name === adaptivePollPolicy.name);
  const lines: string[] = [];
  const check = (ok: boolean, text: string) => lines.push(`- ${ok ? 'met' : 'MISSED'}: ${text}`);
  const burst = find('burst-10000');
  if (burst)
    check(
      burst.usdPer1000AllIn <= 1,
      `burst-10000: $${burst.usdPer1000AllIn} per 1,000 all in, its client checking each waiting generation once a minute (target ≤ $1.00${over(burst.usdPer1000AllIn, 1)}; $${burst.usdPer1000AllInGetEach} with a GET each)`,
    );
  const batch = find('batch-10000');
  if (batch)
    check(
      batch.usdPer1000AllIn <= 0.5,
      `batch-10000: $${batch.usdPer1000AllIn} per 1,000 all in, its client reading the batch (GET /v1/batches/{id}) once a minute: ${batch.batchGetsPerJob === undefined ? '?' : count(Math.round(batch.batchGetsPerJob * 10_000))} GETs of ${batch.readUnitsPerBatchGet ?? '?'} read units on average; DynamoDB $${round(batch.allInPer1000.dynamodb, 4)} of it (target ≤ $0.50${over(batch.usdPer1000AllIn, 0.5)}, #23 item 8)`,
    );
  const single = find('single');
  if (single)
    check(
      single.usdPer1000AllIn <= 0.35,
      `single: $${single.usdPer1000AllIn} per 1,000 all in (target ≤ $0.35${over(single.usdPer1000AllIn, 0.35)})`,
    );
  return lines;
}

/** ", over by x (y %)" when `value` exceeds `limit`, else nothing. */
function over(value: number, limit: number): string {
  if (value <= limit) return '';
  return `; over by ${round(value - limit, 3)}, ${round(((value - limit) / limit) * 100, 1)} %`;
}

function fixedTable(lines: readonly FixedLine[]): string {
  const total = lines.reduce((sum, line) => sum + line.usdPerMonth, 0);
  return markdownTable(
    ['item', 'count', '$/month'],
    [
      ...lines.map((line) => [line.item, line.count, round(line.usdPerMonth, 2)]),
      ['total', '', round(total, 2)],
    ],
  );
}

/**
 * The adaptive policy when the estimate is right, or far off: what calibration buys, and how the
 * policy degrades when its run-time model is wrong by a factor of two either way.
 */
const SCENARIOS: ReadonlyArray<{ name: string; scenario: Scenario }> = [
  { name: 'as above (estimate off by +10 % / −15 %, spread 0.2)', scenario: {} },
  {
    name: 'calibrated estimate (no bias, spread 0.1)',
    scenario: { truth: biased(1), runTimeModel: { ...DEFAULT_RUN_TIME_MODEL, spread: 0.1 } },
  },
  { name: 'tasks run 2× longer than estimated', scenario: { truth: biased(2) } },
  { name: 'tasks run 2× shorter than estimated', scenario: { truth: biased(0.5) } },
];

function biased(factor: number) {
  return {
    ...DEFAULT_TRUTH,
    bias: { 'stable-diffusion-3.5-large': factor, 'stable-diffusion-3.5-large-turbo': factor },
  };
}

/** The workloads the comparison with the workflow before admission control runs. */
const BEFORE_ADMISSION = ['burst-100', 'burst-1000', 'priority'];

/** adaptive with and without admission control (the workflow before #11) on the bursts. */
async function withoutAdmission(shape: WorkflowShape, reports: readonly WorkloadReport[]): Promise<string> {
  const rows: Array<Array<string | number>> = [];
  for (const workload of WORKLOADS.filter((each) => BEFORE_ADMISSION.includes(each.name))) {
    const without = await runWorkload(workload, adaptivePollPolicy, shape, { admission: false });
    const withIt = reports
      .find((report) => report.name === workload.name)
      ?.policies.find((policy) => policy.name === adaptivePollPolicy.name);
    for (const [label, report] of [
      ['without', without],
      ['with', withIt],
    ] as const) {
      if (!report) continue;
      rows.push([
        workload.name,
        label,
        report.failedExecutions,
        report.submitsThrottledPerTrial,
        report.transitionsPerJob,
        report.usdPer1000,
        report.interactiveStartP95 ?? '–',
      ]);
    }
  }
  const headers = [
    'adaptive',
    'admission',
    'failed',
    'submit 429s/run',
    'transitions/job',
    '$/1000 gen',
    'interactive start p95 s',
  ];
  return `### With and without admission control\n\n${markdownTable(headers, rows)}`;
}

async function sensitivity(shape: WorkflowShape): Promise<string> {
  const rows: Array<Array<string | number>> = [];
  for (const { name, scenario } of SCENARIOS) {
    for (const workload of WORKLOADS.filter((each) => each.name === 'single' || each.name === 'burst-100')) {
      const report = await runWorkload(workload, adaptivePollPolicy, shape, scenario);
      rows.push([
        name,
        workload.name,
        report.lagP50,
        report.lagP95,
        report.lagMax,
        report.pollsPerJob,
        report.peakQps,
        report.transitionsPerJob,
      ]);
    }
  }
  const headers = [
    'adaptive, when…',
    'workload',
    'lag p50 s',
    'lag p95 s',
    'lag max s',
    'polls/job',
    'peak q/s',
    'transitions/job',
  ];
  return `### Sensitivity of adaptive to its run-time estimate\n\n${markdownTable(headers, rows)}`;
}

async function main(): Promise<void> {
  const json = process.argv.includes('--json');
  const started = performance.now();
  const template = synthesizeTemplate();
  const shape = synthesizeWorkflowShape(template);
  const fixed = {
    default: fixedMonthlyCost(template),
    lean: fixedMonthlyCost(synthesizeTemplate({ monitoring: 'lean' })),
  };
  const reports: WorkloadReport[] = [];
  for (const workload of WORKLOADS) {
    const policies: PolicyReport[] = [];
    for (const policy of policiesOf(workload)) policies.push(await runWorkload(workload, policy, shape));
    reports.push({ name: workload.name, policies });
  }
  if (json) {
    process.stdout.write(`${JSON.stringify({ workloads: reports, fixedMonthly: fixed }, null, 2)}\n`);
    return;
  }
  const loopEvents = shape.loop.reduce((sum, step) => sum + step.events, 0);
  const out = [
    '## bench:poll',
    '',
    `Simulated DashScope: one runner, FIFO, 2 submits/s, 20 task queries/s. True run time = the estimate's formula with ` +
      `a bias of ×${DEFAULT_TRUTH.bias['stable-diffusion-3.5-large']} (large) and ×${DEFAULT_TRUTH.bias['stable-diffusion-3.5-large-turbo']} (turbo), ` +
      `${DEFAULT_TRUTH.overheadSeconds} s overhead and ${DEFAULT_TRUTH.noise * 100} % log-normal noise. Latencies: ${LATENCY_MS.transition} ms per ` +
      `state, ${LATENCY_MS.invoke} ms Lambda invoke, ${LATENCY_MS.oneWay.join('–')} ms one way to DashScope.`,
    `Workflow (synthesized): ${shape.before.map((step) => step.name).join(' → ')} → [${shape.loop.map((step) => step.name).join(' → ')}]×n → ` +
      `${shape.after.map((step) => step.name).join(' → ')}; ${loopEvents} history events per loop; max ${shape.maxPolls} polls; ` +
      `deadline ${shape.deadlineSeconds} s.` +
      (shape.admit.modeled
        ? ` ${ADMIT_STATE} is modeled (a Lambda Task waiting for its task token: 1 transition, 5 events): the synthesized workflow has no such state yet.`
        : ''),
    `Admission (bench/poll-sim/dispatcher.ts): depth ${ADMISSION_SETTINGS.depth} per account, grants ≥ 1/${ADMISSION_SETTINGS.submitsPerSecond} s + 100 ms apart per account, ` +
      `batch gets 1 grant in ${ADMISSION_SETTINGS.rules.batchEvery} while interactive waits; the dispatcher runs at each enqueue, at each release (Poll's, Notify's, the reconciler's) ` +
      `and every ${ADMISSION_SETTINGS.sweepSeconds} s, one run at a time through its lease (an invocation that finds it held leaves a request: one more run by the holder); ` +
      `${DISPATCHER_ASSUMPTIONS.storeCallMs} ms per DynamoDB call, ${DISPATCHER_ASSUMPTIONS.awsCallMs} ms per SendTaskSuccess or async Invoke (assumed).`,
    `Memory as synthesized: dispatcher ${shape.memoryMb.dispatch} MB, API ${shape.sizing.apiMemoryMb} MB, reconciler ${shape.sizing.reconcilerMemoryMb} MB ` +
      `(${shape.sizing.reconcilerRunsPerGeneration} runs per generation). "$/1000 all-in": a client that lists its waiting generations once a minute ` +
      `(${ALL_IN_ASSUMPTIONS.apiListPageSize} a page, each with its place); "all-in, GET each": one that GETs each one once a minute. ` +
      `In the batch workloads (two-batches, batch-10000) "all-in" has a client that GETs each batch once a minute (GET /v1/batches/{id}: its item, ` +
      `six COUNT queries over byBatch that grow with the batch, the counters' item) and none of its generations, and reads its estimatedCompletionAt each time.`,
    '',
    ...WORKLOADS.map((workload, index) => `${table(workload, reports[index] as WorkloadReport)}\n`),
    'Targets (#13, polling):',
    '',
    ...targets(reports),
    '',
    'Targets (#11, admission control), adaptive:',
    '',
    ...admissionTargets(reports),
    '',
    'Targets (#23, fair share across batches), adaptive:',
    '',
    ...batchTargets(reports),
    '',
    'Targets (#22, the cost model counts what runs), adaptive:',
    '',
    ...costTargets(reports),
    '',
    '### Fixed monthly cost, cdk.json defaults (counted in the synthesized template)',
    '',
    fixedTable(fixed.default),
    '',
    '### Fixed monthly cost, `monitoring: "lean"` (no dashboard, no custom metrics, no topic key)',
    '',
    fixedTable(fixed.lean),
    '',
    await withoutAdmission(shape, reports),
    '',
    await sensitivity(shape),
    '',
    `(${WORKLOADS.reduce((sum, workload) => sum + workload.trials * policiesOf(workload).length, 0)} simulated runs in ${round((performance.now() - started) / 1000, 1)} s)`,
  ];
  process.stdout.write(`${out.join('\n')}\n`);
}

await main();
