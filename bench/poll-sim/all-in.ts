import { ERROR_TYPES } from '../../functions/shared/errors.js';
import { METRIC, type MetricName } from '../../functions/shared/metrics.js';
import { MEMORY_MB } from '../../infra/constructs/lambda-sizing.js';
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
 * Functions; Admit, Submit and Poll; the admission dispatcher and its queue) plus everything around it that the simulation does not run
 * (Persist, Notify, the API, the generations index, S3, EventBridge, logs, traces), and the fixed
 * monthly cost of the stack. The counts that are not simulated are the assumptions below, each
 * with where it comes from.
 */
export const ALL_IN_ASSUMPTIONS = {
  /**
   * Persist, one invocation: `bench:memory`'s projection at its configured 1024 MB (2 images, each
   * with its thumbnail).
   */
  persistSeconds: 0.56,
  /** Notify, one invocation without a webhook: `bench:memory`'s projection at 128 MB. */
  notifySeconds: 0.035,
  /** The API Lambda (256 MB) per request: a DynamoDB read or write and a small JSON answer (assumed). */
  apiSeconds: 0.03,
  apiMemoryMb: 256,
  /** The reconciler (the lead's, on the execution's status-change event), 128 MB (assumed). */
  reconcilerSeconds: 0.03,
  reconcilerMemoryMb: 128,
  /** A client following its generation: one GET every this many seconds until it ends, then one more. */
  apiGetIntervalSeconds: 5,
  /**
   * While the generation waits in the admission queue, one GET a minute: its position and
   * estimated start change slowly, and the answer says when it is expected to start (assumed).
   */
  apiGetIntervalQueuedSeconds: 60,
  /** The generations index: on-demand, a base table and 2 GSIs, every write touching both. */
  indexesPerWrite: 2,
  /** Writes besides the polls': create (API or trigger), submit, end (Persist/Notify), the reconciler's. */
  fixedWrites: 4,
  /** An eventually consistent GetItem of an item up to 4 KB. */
  rruPerGet: 0.5,
  /**
   * The admission queue's items live in one of its two GSIs at a time (`byQueue` while waiting,
   * `bySlot` while granted): each queue write touches the table and about one index. Its reads
   * (the dispatcher's GetItem and Queries) are eventually consistent and small: `rruPerGet` each.
   */
  queueIndexesPerWrite: 1,
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
  /** DynamoDB calls on the admission queue: enqueue, grant, start, release, the dispatcher's reads and state. */
  readonly queueWrites: number;
  readonly queueReads: number;
  /** Poll invocations, and those whose visible state (status or progress) changed: one index write each. */
  readonly polls: number;
  readonly visibleChanges: number;
  /** GETs of the generation by its client (see `apiGetIntervalSeconds`). */
  readonly apiGets: number;
  readonly images: number;
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

/** The all-in dollars of one generation that used `usage`. */
export function allInCost(usage: GenerationUsage): AllInCost {
  const a = ALL_IN_ASSUMPTIONS;
  const apiRequests = 1 + usage.apiGets;
  const otherGbSeconds =
    gbSeconds(MEMORY_MB.persist, a.persistSeconds) +
    gbSeconds(MEMORY_MB.notify, a.notifySeconds) +
    apiRequests * gbSeconds(a.apiMemoryMb, a.apiSeconds) +
    gbSeconds(a.reconcilerMemoryMb, a.reconcilerSeconds);
  const otherInvocations = 1 + 1 + apiRequests + 1;
  const lambda =
    (usage.lambdaGbSeconds + usage.dispatcherGbSeconds + otherGbSeconds) * USD_PER_LAMBDA_GB_SECOND +
    (usage.lambdaRequests + usage.dispatcherInvocations + otherInvocations) * USD_PER_LAMBDA_REQUEST;
  const writes = a.fixedWrites + usage.visibleChanges;
  const dynamodb =
    writes * (1 + a.indexesPerWrite) * USD_PER_DYNAMODB_WRU +
    usage.queueWrites * (1 + a.queueIndexesPerWrite) * USD_PER_DYNAMODB_WRU +
    (usage.apiGets + usage.queueReads) * a.rruPerGet * USD_PER_DYNAMODB_RRU;
  const s3Requests =
    (usage.images * a.s3PutsPerImage + a.s3PutsBesidesImages) * USD_PER_S3_PUT +
    (usage.images + a.s3GetsBesidesDownloads) * USD_PER_S3_GET;
  const invocations = usage.lambdaRequests + usage.dispatcherInvocations + otherInvocations;
  // One structured line and one EMF line per workflow invocation; the API and reconciler log one line.
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
 * and the custom metric series the code can emit (an upper bound: a series costs only in the hours
 * it is written; none when every function runs with `POWERTOOLS_METRICS_DISABLED`, as `monitoring:
 * "lean"` sets). Throws when the template holds a resource type this function does not know.
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
  ];
}
