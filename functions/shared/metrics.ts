import { Metrics as PowertoolsMetrics } from '@aws-lambda-powertools/metrics';

/**
 * The metrics the functions emit, in CloudWatch embedded metric format (EMF) on Lambda, under the
 * namespace `POWERTOOLS_METRICS_NAMESPACE` (the stack's `metricsNamespace`). Every metric carries
 * the dimension `service` (the emitting function, {@link SERVICE}); `Outcomes` also `outcome`.
 * The CDK alarms and dashboard address them by these very names.
 */
export const METRIC = {
  /** A DashScope task created (Submit). */
  submits: 'Submits',
  /** A DashScope task queried (Poll). */
  polls: 'Polls',
  /** An HTTP 429 from DashScope, whichever call got it (retried by the workflow or the function). */
  throttles: 'Throttles',
  /** A finished generation, by `outcome`: `succeeded`, `partial`, or the failure's error type. */
  outcomes: 'Outcomes',
  /** Bytes of images stored in S3 (Persist). */
  bytesPersisted: 'BytesPersisted',
  /** Images stored (Persist). */
  imagesPersisted: 'ImagesPersisted',
  /** Images of a succeeded task that could not be stored (Persist): expired, refused, too large. */
  imagesFailed: 'ImagesFailed',
  /** Seconds from the execution's start (the request) to its images stored (Notify, on success). */
  secondsToImages: 'SecondsToImages',
  /** Request-file lines that started an execution (Trigger). */
  requestsStarted: 'RequestsStarted',
  /** Request-file lines rejected as invalid (Trigger). */
  requestsRejected: 'RequestsRejected',
  /** A write to the generations index that failed (the reconciler converges it; alarm-worthy if steady). */
  indexWriteFailures: 'IndexWriteFailures',
  /** An index record the reconciler had to correct: the workflow's own final write was lost. */
  indexReconciled: 'IndexReconciled',
  /**
   * Seconds the oldest generation waiting for admission is past its estimated start (Dispatch, on
   * its one-minute sweep; 0 when none is late): the queue is stuck, or its runners are.
   */
  oldestWaitingSeconds: 'OldestWaitingSeconds',
} as const;
export type MetricName = (typeof METRIC)[keyof typeof METRIC];

/** The units this project uses (CloudWatch's names). */
export type MetricUnit = 'Count' | 'Bytes' | 'Seconds';

/** The `service` dimension of each function's metrics (and its logs' `service` field). */
export const SERVICE = {
  submit: 'submit',
  poll: 'poll',
  persist: 'persist',
  notify: 'notify',
  api: 'api',
  trigger: 'trigger',
  reconcile: 'reconcile',
  admit: 'admit',
  dispatch: 'dispatch',
} as const;
export type Service = (typeof SERVICE)[keyof typeof SERVICE];

/** The dimension of `Outcomes` that says how a generation ended. */
export const OUTCOME_DIMENSION = 'outcome';

/**
 * The metrics surface handlers use: EMF through Powertools on Lambda, {@link noMetrics} locally,
 * anything recording in tests.
 */
export interface Metrics {
  /** Adds `value` to metric `name`, under extra `dimensions` when given. */
  add(name: MetricName, unit: MetricUnit, value: number, dimensions?: Readonly<Record<string, string>>): void;
}

/** Metrics that go nowhere (the local runner, tests that do not look). */
export const noMetrics: Metrics = { add() {} };

/** Lambda metrics: buffered per invocation, written as EMF by {@link LambdaMetrics.flush}. */
export interface LambdaMetrics extends Metrics {
  /** Writes what this invocation added (nothing when it added nothing). Call once per invocation. */
  flush(): void;
}

/** One function's EMF metrics; the namespace comes from `POWERTOOLS_METRICS_NAMESPACE`. */
export function createLambdaMetrics(service: Service): LambdaMetrics {
  const metrics = new PowertoolsMetrics({ serviceName: service });
  return {
    add(name, unit, value, dimensions) {
      if (dimensions && Object.keys(dimensions).length > 0) {
        // Its own EMF line: extra dimensions must not stick to the invocation's other metrics.
        const single = metrics.singleMetric();
        single.addDimensions({ ...dimensions });
        single.addMetric(name, unit, value);
        return;
      }
      metrics.addMetric(name, unit, value);
    },
    flush() {
      if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics();
    },
  };
}

/**
 * `fetchImpl` (the global fetch, looked up at each call, when undefined), counting every HTTP 429
 * answer as one {@link METRIC.throttles}. Wraps the DashScope client's fetch, so throttling shows
 * whichever call met it, also when retries absorb it.
 */
export function countThrottles(fetchImpl: typeof fetch | undefined, metrics: Metrics): typeof fetch {
  return async (input, init) => {
    const response = await (fetchImpl ?? globalThis.fetch)(input, init);
    if (response.status === 429) metrics.add(METRIC.throttles, 'Count', 1);
    return response;
  };
}
