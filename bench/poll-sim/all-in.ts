import { admissionSettingsSchema } from '../../functions/shared/admission.js';
import { ERROR_TYPES } from '../../functions/shared/errors.js';
import { METRIC, type MetricName } from '../../functions/shared/metrics.js';
import { MEMORY_MB } from '../../infra/constructs/lambda-sizing.js';
import { DISPATCHER_ASSUMPTIONS, QUEUE_UNITS } from './dispatcher.js';
import {
  USD_PER_ALARM_METRIC_MONTH,
  USD_PER_CUSTOM_EVENT,
  USD_PER_CUSTOM_METRIC_MONTH,
  USD_PER_DASHBOARD_MONTH,
  USD_PER_DYNAMODB_RRU,
  USD_PER_DYNAMODB_WRU,
  USD_PER_HTTP_API_REQUEST,
  USD_PER_KMS_KEY_MONTH,
  USD_PER_LAMBDA_GB_SECOND,
  USD_PER_LAMBDA_REQUEST,
  USD_PER_LOG_GB,
  USD_PER_S3_GET,
  USD_PER_S3_PUT,
  USD_PER_SECRET_MONTH,
  USD_PER_STATE_TRANSITION,
  USD_PER_TRACE,
} from './pricing.js';

/**
 * What one generation costs on AWS, all in: the orchestration the simulation counts (Step
 * Functions; Admit, Submit and Poll; the admission dispatcher and its queue) plus everything around
 * it that the simulation does not run (Persist, Notify, the API, the reconciler, the generations
 * index, S3, EventBridge, logs, traces), and the fixed monthly cost of the stack. The counts that
 * are not simulated are the assumptions below, each with where it comes from; the functions'
 * memory and the reconciler's invocations are read from the synthesized template
 * ({@link deploymentSizing}).
 */
export const ALL_IN_ASSUMPTIONS = {
  /**
   * Persist, one invocation: `bench:memory`'s projection at its configured 1024 MB (2 images, each
   * with its thumbnail).
   */
  persistSeconds: 0.56,
  /** Notify, one invocation without a webhook: `bench:memory`'s projection at 128 MB. */
  notifySeconds: 0.035,
  /** The API Lambda per GET of one generation: one or two DynamoDB reads and a small JSON answer (assumed). */
  apiSeconds: 0.03,
  /** The API Lambda per list page: the status index's query and one BatchGetItem of the places (assumed). */
  apiListSeconds: 0.06,
  /** The reconciler per status-change event: a conditional index write; at an end also a release and a kick (assumed). */
  reconcilerSeconds: 0.03,
  /** A client following its generation once admitted: one GET every this many seconds until it ends, then one more. */
  apiGetIntervalSeconds: 5,
  /**
   * While its generations wait in the admission queue, the client checks each once a minute:
   * its position and estimated start change slowly (assumed). By default it lists them
   * (`GET /v1/generations?status=queued`, each item with its place, {@link apiListPageSize} a page);
   * `usdPer1000AllInGetEach` prices a client that GETs each one instead.
   */
  apiGetIntervalQueuedSeconds: 60,
  /** The largest page `GET /v1/generations` gives (`limit`, at most 50). */
  apiListPageSize: 50,
  /** The generations index: on-demand, a base table and 2 GSIs, every write touching both. */
  indexesPerWrite: 2,
  /** Index writes: create (API or trigger), submit, the end (Persist/Notify); the polls' are counted apart. */
  fixedWrites: 3,
  /**
   * The reconciler's index write per status-change event, which its stage condition refuses when
   * the workflow wrote first (the usual case): 1 WRU, on the table alone.
   */
  reconcilerWriteUnits: 1,
  /**
   * Read units of a GET of one generation: its record, strongly consistent, up to 4 KB (1 RRU);
   * while it waits for admission also its place, one eventually consistent BatchGetItem of its
   * entry and the lanes' counters (1 more), at any queue length. test/bench/read-units.test.ts
   * measures both on dynalite.
   */
  rruPerGet: 1,
  rruPerQueuedGet: 2,
  /**
   * Read units of a list page, per generation it shows (its record in the status index's
   * eventually consistent query, its entry in the BatchGetItem of the places), and once a page
   * (the counters' item, and the one more record the query reads to know whether a next page
   * exists). test/bench/read-units.test.ts measures a page of 50 on dynalite.
   */
  rruPerListedGeneration: 0.6,
  rruPerListPage: 0.5,
  /**
   * A client following a batch (the batch workloads): `GET /v1/batches/{id}` once a minute, no GET
   * of its generations. Each GET reads the batch's item, strongly consistent, up to 4 KB
   * (`rruBatchItem`); while it runs also one keys-only COUNT query per count (six) over the
   * `byBatch` index, each 0.5 unit per 4 KB of keys read and 0.5 at least, whose keys grow with
   * the batch (`byBatchKeyBytes` each: the item's id, its `batchCount` and `batchLine`, names and
   * values; about 1 MB, 125 units, for 10,000 lines), and the counters' item for its
   * `estimatedCompletionAt` (`rruBatchEstimate`). functions/shared/aws/dynamodb-batches.ts
   * (`countsOf`); test/bench/read-units.test.ts measures a batch's GET on dynalite.
   */
  apiBatchGetIntervalSeconds: 60,
  rruBatchItem: 1,
  rruBatchCountMin: 0.5,
  byBatchKeyBytes: 100,
  rruBatchEstimate: 0.5,
  /** The API Lambda per batch GET: the item and six COUNT queries at once (about 1 MB for 10,000 lines), the counters (assumed). */
  apiBatchGetSeconds: 0.15,
  /** S3 PUTs per stored image: the image and its thumbnail. */
  s3PutsPerImage: 2,
  /** S3 per generation besides the images: Persist's manifest PUT and its LIST, and its HEAD (`bench:memory`). */
  s3PutsBesidesImages: 2,
  s3GetsBesidesDownloads: 1,
  /** CloudWatch Logs bytes: Lambda's START/END/REPORT lines per invocation, one structured log line, one EMF line. */
  platformLogBytes: 350,
  logLineBytes: 550,
  emfLineBytes: 350,
  /** Every execution is traced (X-Ray's default sampling keeps the first request of each second). */
  tracesPerGeneration: 1,
} as const;

/** What one generation used, on average, as the simulation and its workload give it. */
export interface GenerationUsage {
  readonly transitions: number;
  /** Admit, Submit and Poll, as simulated. */
  readonly lambdaGbSeconds: number;
  readonly lambdaRequests: number;
  /** The dispatcher Lambda's share: its invocations (kicks and sweeps) and GB-s over the generations. */
  readonly dispatcherInvocations: number;
  readonly dispatcherGbSeconds: number;
  /**
   * DynamoDB request units on the admission queue's items (entries, slots, counters, lease, recent
   * tasks), as the simulation counts each operation (`QUEUE_UNITS` in dispatcher.ts).
   */
  readonly queueWriteUnits: number;
  readonly queueReadUnits: number;
  /** Poll invocations, and those whose visible state (status or progress) changed: one index write each. */
  readonly polls: number;
  readonly visibleChanges: number;
  /** GETs of the generation by its client once admitted, and one at its end (see `apiGetIntervalSeconds`). */
  readonly apiGets: number;
  /** While it waited: the GETs of a client that GETs each generation, once a minute. */
  readonly apiGetsQueued: number;
  /** While it waited: its share of a listing client's pages, and the times those showed it (once a minute). */
  readonly apiListPages: number;
  readonly apiListedChecks: number;
  readonly images: number;
  /** The HTTP requests that created it: 1 (`POST /v1/generations`), or its share of its batch's `POST /v1/batches`. */
  readonly apiCreates: number;
  /** Its share of the GETs of its batch by a client following the batch (once a minute), and of their read units. */
  readonly apiBatchGets: number;
  readonly apiBatchReadUnits: number;
}

/**
 * How the client checks its generations while they wait: by listing them (default), a GET each,
 * or, for a batch's lines, a GET of the batch once a minute and none of its generations.
 */
export type WaitingClient = 'list' | 'get-each' | 'batch';

/**
 * The read units of one `GET /v1/batches/{id}` of a batch that runs, with `keys[i]` keys in each of
 * its `byBatch` partitions (one per count): the item, six COUNT queries, the counters' item.
 */
export function batchGetReadUnits(keys: readonly number[]): number {
  const a = ALL_IN_ASSUMPTIONS;
  const counts = keys.reduce(
    (sum, n) => sum + Math.max(a.rruBatchCountMin, Math.ceil((n * a.byBatchKeyBytes) / 4096) * 0.5),
    0,
  );
  return a.rruBatchItem + counts + a.rruBatchEstimate;
}

/** Dollars per generation, line by line. */
export interface AllInCost {
  readonly stepFunctions: number;
  readonly lambda: number;
  readonly dynamodb: number;
  readonly s3Requests: number;
  readonly eventBridge: number;
  readonly httpApi: number;
  readonly logs: number;
  readonly xray: number;
  readonly total: number;
}

const gbSeconds = (memoryMb: number, seconds: number) => (memoryMb / 1024) * seconds;

/** The all-in dollars of one generation that used `usage`, on the deployment `sizing` describes. */
export function allInCost(
  usage: GenerationUsage,
  sizing: DeploymentSizing,
  client: WaitingClient = 'list',
): AllInCost {
  const a = ALL_IN_ASSUMPTIONS;
  const listing = client === 'list';
  const following = client === 'batch';
  // A batch's client GETs the batch, not its generations.
  const gets = following ? 0 : usage.apiGets + (listing ? 0 : usage.apiGetsQueued);
  const lists = listing ? usage.apiListPages : 0;
  const batchGets = following ? usage.apiBatchGets : 0;
  const creates = following ? usage.apiCreates : 1;
  const apiRequests = creates + gets + lists + batchGets;
  const reconcilerRuns = sizing.reconcilerRunsPerGeneration;
  const otherGbSeconds =
    gbSeconds(MEMORY_MB.persist, a.persistSeconds) +
    gbSeconds(MEMORY_MB.notify, a.notifySeconds) +
    // Its create: the API's (or, for a batch's line, the trigger's: the same registration and start).
    (1 + gets) * gbSeconds(sizing.apiMemoryMb, a.apiSeconds) +
    lists * gbSeconds(sizing.apiMemoryMb, a.apiListSeconds) +
    batchGets * gbSeconds(sizing.apiMemoryMb, a.apiBatchGetSeconds) +
    reconcilerRuns * gbSeconds(sizing.reconcilerMemoryMb, a.reconcilerSeconds);
  // Persist, Notify, the API's requests, the reconciler's events.
  const otherInvocations = 1 + 1 + apiRequests + reconcilerRuns;
  const lambda =
    (usage.lambdaGbSeconds + usage.dispatcherGbSeconds + otherGbSeconds) * USD_PER_LAMBDA_GB_SECOND +
    (usage.lambdaRequests + usage.dispatcherInvocations + otherInvocations) * USD_PER_LAMBDA_REQUEST;
  const indexWriteUnits =
    (a.fixedWrites + usage.visibleChanges) * (1 + a.indexesPerWrite) +
    reconcilerRuns * a.reconcilerWriteUnits;
  const apiReadUnits = following
    ? usage.apiBatchReadUnits
    : usage.apiGets * a.rruPerGet +
      (listing
        ? usage.apiListedChecks * a.rruPerListedGeneration + lists * a.rruPerListPage
        : usage.apiGetsQueued * a.rruPerQueuedGet);
  const dynamodb =
    (indexWriteUnits + usage.queueWriteUnits) * USD_PER_DYNAMODB_WRU +
    (apiReadUnits + usage.queueReadUnits) * USD_PER_DYNAMODB_RRU;
  const s3Requests =
    (usage.images * a.s3PutsPerImage + a.s3PutsBesidesImages) * USD_PER_S3_PUT +
    (usage.images + a.s3GetsBesidesDownloads) * USD_PER_S3_GET;
  const invocations = usage.lambdaRequests + usage.dispatcherInvocations + otherInvocations;
  // One structured line and one EMF line per workflow invocation (Admit, Submit, Poll, Persist,
  // Notify); the API, the reconciler and the dispatcher log one line each.
  const logBytes =
    invocations * (a.platformLogBytes + a.logLineBytes) + (usage.lambdaRequests + 2) * a.emfLineBytes;
  const lines = {
    stepFunctions: usage.transitions * USD_PER_STATE_TRANSITION,
    lambda,
    dynamodb,
    s3Requests,
    eventBridge: USD_PER_CUSTOM_EVENT,
    httpApi: apiRequests * USD_PER_HTTP_API_REQUEST,
    logs: (logBytes / 1024 ** 3) * USD_PER_LOG_GB,
    xray: a.tracesPerGeneration * USD_PER_TRACE,
  };
  return { ...lines, total: Object.values(lines).reduce((sum, value) => sum + value, 0) };
}

/** What the cost model reads of the synthesized template, beyond the workflow (WorkflowShape). */
export interface DeploymentSizing {
  /** Memory, MB, of the API's Lambda (the HTTP API's integration). */
  readonly apiMemoryMb: number;
  /** Memory, MB, of the reconciler (the target of the rule on the workflow's status changes). */
  readonly reconcilerMemoryMb: number;
  /** Memory, MB, of the dispatcher (the target of the schedule). */
  readonly dispatchMemoryMb: number;
  /**
   * Reconciler invocations per generation: the status changes of an execution its rule matches,
   * RUNNING and the end (every status, when the pattern names none).
   */
  readonly reconcilerRunsPerGeneration: number;
  /** The dispatcher's scheduled sweeps in a month of 730 hours (its `rate(...)`). */
  readonly sweepsPerMonth: number;
  /** The DashScope accounts the dispatcher serves (its admission settings in its environment). */
  readonly accounts: number;
}

type Resource = Template['Resources'][string];

/** The logical id of the function an `Fn::GetAtt [id, Arn]` names, if it does. */
function functionOf(arn: unknown): string | undefined {
  const getAtt = (arn as { 'Fn::GetAtt'?: unknown } | undefined)?.['Fn::GetAtt'];
  return Array.isArray(getAtt) && getAtt[1] === 'Arn' ? String(getAtt[0]) : undefined;
}

/**
 * Reads {@link DeploymentSizing} from a synthesized template. Throws when the template has no such
 * function, rule or settings: a changed stack fails here rather than be priced with a guess.
 */
export function deploymentSizing(template: Template): DeploymentSizing {
  const resources = template.Resources;
  const memoryOf = (id: string | undefined, what: string): number => {
    const memory = id === undefined ? undefined : resources[id]?.Properties?.MemorySize;
    if (typeof memory !== 'number') throw new Error(`deploymentSizing: no memory found for ${what}`);
    return memory;
  };
  const all = Object.values(resources);
  const rules = all.filter((resource) => resource.Type === 'AWS::Events::Rule');
  const targetOf = (rule: Resource | undefined) =>
    functionOf((rule?.Properties?.Targets as Array<{ Arn?: unknown }> | undefined)?.[0]?.Arn);

  const api = all.find(
    (resource) =>
      resource.Type === 'AWS::ApiGatewayV2::Integration' && functionOf(resource.Properties?.IntegrationUri),
  );
  const statusRule = rules.find((rule) => {
    const pattern = rule.Properties?.EventPattern as
      | { source?: unknown; 'detail-type'?: unknown }
      | undefined;
    return (
      JSON.stringify(pattern?.source) === JSON.stringify(['aws.states']) &&
      JSON.stringify(pattern?.['detail-type']) === JSON.stringify(['Step Functions Execution Status Change'])
    );
  });
  const statuses = (statusRule?.Properties?.EventPattern as { detail?: { status?: unknown } } | undefined)
    ?.detail?.status;
  const matches = (status: string) => !Array.isArray(statuses) || statuses.includes(status);
  const reconcilerRunsPerGeneration =
    (matches('RUNNING') ? 1 : 0) + (['SUCCEEDED', 'FAILED', 'TIMED_OUT', 'ABORTED'].some(matches) ? 1 : 0);

  const schedule = rules.find((rule) => typeof rule.Properties?.ScheduleExpression === 'string');
  const rate = /^rate\((\d+) minutes?\)$/.exec(String(schedule?.Properties?.ScheduleExpression ?? ''));
  if (!rate) throw new Error('deploymentSizing: no rate(n minutes) schedule for the dispatcher');
  const dispatcher = targetOf(schedule);
  const variables = Object.values(
    (
      (dispatcher === undefined ? undefined : resources[dispatcher]?.Properties?.Environment) as
        | { Variables?: Record<string, unknown> }
        | undefined
    )?.Variables ?? {},
  );
  const settings = variables
    .map((value) => {
      try {
        return admissionSettingsSchema.safeParse(JSON.parse(String(value)));
      } catch {
        return undefined;
      }
    })
    .find((parsed) => parsed?.success)?.data;
  if (!settings) throw new Error("deploymentSizing: no admission settings in the dispatcher's environment");

  return {
    apiMemoryMb: memoryOf(functionOf(api?.Properties?.IntegrationUri), 'the API'),
    reconcilerMemoryMb: memoryOf(targetOf(statusRule), 'the reconciler'),
    dispatchMemoryMb: memoryOf(dispatcher, 'the dispatcher'),
    reconcilerRunsPerGeneration,
    sweepsPerMonth: (HOURS_PER_MONTH * 60) / Number(rate[1]),
    accounts: settings.accounts.length,
  };
}

/** AWS's month for monthly prices: 730 hours. */
export const HOURS_PER_MONTH = 730;

/**
 * What one scheduled sweep of the dispatcher costs with nothing queued or held: an invocation at
 * its synthesized memory (the lease taken and released, each lane's head read twice, each
 * account's recent tasks and slots, and `OldestWaitingSeconds` measured), its platform log lines
 * and its EMF line (when metrics are on), and those DynamoDB units (`QUEUE_UNITS`).
 */
export function idleSweepCost(sizing: DeploymentSizing, metrics: boolean): number {
  const { storeCallMs, cpuMs } = DISPATCHER_ASSUMPTIONS;
  const u = QUEUE_UNITS;
  const calls = 2 + 2 + 2 * sizing.accounts + (2 + sizing.accounts);
  const seconds = (calls * storeCallMs + cpuMs) / 1000;
  const readUnits = 2 * 2 * u.laneHead + sizing.accounts * (u.recentTasks + 2 * u.slots);
  const writeUnits = u.leaseTake + u.leaseRelease;
  const logBytes = ALL_IN_ASSUMPTIONS.platformLogBytes + (metrics ? ALL_IN_ASSUMPTIONS.emfLineBytes : 0);
  return (
    USD_PER_LAMBDA_REQUEST +
    gbSeconds(sizing.dispatchMemoryMb, seconds) * USD_PER_LAMBDA_GB_SECOND +
    readUnits * USD_PER_DYNAMODB_RRU +
    writeUnits * USD_PER_DYNAMODB_WRU +
    (logBytes / 1024 ** 3) * USD_PER_LOG_GB
  );
}

/**
 * The custom metric series the functions can emit (a series is a name with one set of dimension
 * values): every metric carries `service`; `Outcomes` also `outcome`, one series per outcome.
 */
export const CUSTOM_METRIC_SERIES: Readonly<Record<MetricName, number>> = {
  [METRIC.submits]: 1,
  [METRIC.polls]: 1,
  // Submit, Poll and Persist call DashScope.
  [METRIC.throttles]: 3,
  // `Outcomes` carries succeeded, partial, or an error type.
  [METRIC.outcomes]: 2 + ERROR_TYPES.length,
  [METRIC.bytesPersisted]: 1,
  [METRIC.imagesPersisted]: 1,
  [METRIC.imagesFailed]: 1,
  [METRIC.secondsToImages]: 1,
  [METRIC.requestsStarted]: 1,
  [METRIC.requestsRejected]: 1,
  // Submit, Poll and Notify write to the index.
  [METRIC.indexWriteFailures]: 3,
  [METRIC.indexReconciled]: 1,
  // The dispatcher, on its one-minute sweep.
  [METRIC.oldestWaitingSeconds]: 1,
};

/** One line of the fixed monthly cost. */
export interface FixedLine {
  readonly item: string;
  readonly count: number;
  readonly usdPerMonth: number;
}

/** The parts of a synthesized CloudFormation template the fixed cost reads. */
export interface Template {
  readonly Resources: Record<string, { Type: string; Properties?: Record<string, unknown> }>;
}

/**
 * Resource types that cost nothing while idle (they bill per use, counted per generation above,
 * or not at all). A type in the template that is neither here nor priced in
 * {@link fixedMonthlyCost} is an error, so a new kind of resource cannot slip past the figure.
 */
export const NO_FIXED_COST_TYPES: readonly string[] = [
  'AWS::S3::Bucket',
  'AWS::S3::BucketPolicy',
  'AWS::Logs::LogGroup',
  'AWS::IAM::Role',
  'AWS::IAM::Policy',
  'AWS::Lambda::Function',
  'AWS::Lambda::Permission',
  'AWS::Lambda::EventInvokeConfig',
  'AWS::StepFunctions::StateMachine',
  'AWS::ApiGatewayV2::Api',
  'AWS::ApiGatewayV2::Stage',
  'AWS::ApiGatewayV2::Integration',
  'AWS::ApiGatewayV2::Route',
  'AWS::ApiGatewayV2::Authorizer',
  'AWS::Events::Rule',
  'AWS::Scheduler::Schedule',
  'AWS::SNS::Topic',
  'AWS::SNS::TopicPolicy',
  'AWS::SQS::Queue',
  'AWS::SQS::QueuePolicy',
  'AWS::DynamoDB::Table',
  'AWS::DynamoDB::GlobalTable',
  'AWS::CDK::Metadata',
];

const PRICED_TYPES = [
  'AWS::SecretsManager::Secret',
  'AWS::KMS::Key',
  'AWS::KMS::Alias',
  'AWS::CloudWatch::Alarm',
  'AWS::CloudWatch::Dashboard',
];

/**
 * The stack's fixed monthly cost, line by line, counted in the synthesized template: secrets
 * (those it creates and the DashScope key it reads by name), KMS keys, alarm metrics, dashboards,
 * the custom metric series the code can emit (an upper bound: a series costs only in the hours
 * it is written; none when every function runs with `POWERTOOLS_METRICS_DISABLED`, as `monitoring:
 * "lean"` sets), and the dispatcher's scheduled sweeps as they run with nothing queued
 * ({@link idleSweepCost}; a sweep during traffic is also in the per-generation figures, so those
 * few minutes count twice, by a few millionths of a dollar each). Throws when the template holds a
 * resource type this function does not know.
 */
export function fixedMonthlyCost(template: Template): FixedLine[] {
  const resources = Object.values(template.Resources);
  const unknown = [...new Set(resources.map((resource) => resource.Type))].filter(
    (type) => !NO_FIXED_COST_TYPES.includes(type) && !PRICED_TYPES.includes(type),
  );
  if (unknown.length > 0)
    throw new Error(`fixedMonthlyCost: resource types without a known fixed cost: ${unknown.join(', ')}`);
  const ofType = (type: string) => resources.filter((resource) => resource.Type === type);
  const alarmMetrics = ofType('AWS::CloudWatch::Alarm').reduce((sum, alarm) => {
    const metrics = alarm.Properties?.Metrics as Array<{ MetricStat?: unknown }> | undefined;
    return sum + (metrics ? metrics.filter((metric) => metric.MetricStat !== undefined).length : 1);
  }, 0);
  const metricsDisabled = ofType('AWS::Lambda::Function').every(
    (fn) =>
      (fn.Properties?.Environment as { Variables?: Record<string, unknown> } | undefined)?.Variables
        ?.POWERTOOLS_METRICS_DISABLED === 'true',
  );
  const series = metricsDisabled
    ? 0
    : Object.values(CUSTOM_METRIC_SERIES).reduce((sum, count) => sum + count, 0);
  const sizing = deploymentSizing(template);
  const secrets = ofType('AWS::SecretsManager::Secret').length + 1;
  const keys = ofType('AWS::KMS::Key').length;
  const dashboards = ofType('AWS::CloudWatch::Dashboard').length;
  return [
    {
      item: 'Secrets Manager secrets (incl. the DashScope key)',
      count: secrets,
      usdPerMonth: secrets * USD_PER_SECRET_MONTH,
    },
    { item: 'KMS keys', count: keys, usdPerMonth: keys * USD_PER_KMS_KEY_MONTH },
    {
      item: 'CloudWatch alarm metrics',
      count: alarmMetrics,
      usdPerMonth: alarmMetrics * USD_PER_ALARM_METRIC_MONTH,
    },
    { item: 'CloudWatch dashboards', count: dashboards, usdPerMonth: dashboards * USD_PER_DASHBOARD_MONTH },
    {
      item: 'custom metric series (at most)',
      count: series,
      usdPerMonth: series * USD_PER_CUSTOM_METRIC_MONTH,
    },
    {
      item: "the dispatcher's sweeps with nothing queued (Lambda, its lease and reads, logs)",
      count: sizing.sweepsPerMonth,
      usdPerMonth: sizing.sweepsPerMonth * idleSweepCost(sizing, !metricsDisabled),
    },
  ];
}
