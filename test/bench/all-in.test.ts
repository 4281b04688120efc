import { beforeAll, describe, expect, it } from 'vitest';
import {
  ALL_IN_ASSUMPTIONS,
  allInCost,
  batchGetReadUnits,
  CUSTOM_METRIC_SERIES,
  type DeploymentSizing,
  deploymentSizing,
  fixedMonthlyCost,
  type GenerationUsage,
  idleSweepCost,
} from '../../bench/poll-sim/all-in.js';
import {
  USD_PER_DYNAMODB_RRU,
  USD_PER_DYNAMODB_WRU,
  USD_PER_HTTP_API_REQUEST,
  USD_PER_LAMBDA_GB_SECOND,
  USD_PER_LAMBDA_REQUEST,
  USD_PER_STATE_TRANSITION,
} from '../../bench/poll-sim/pricing.js';
import type { SynthesizedTemplate } from '../../bench/poll-sim/workflow-shape.js';
import { METRIC } from '../../functions/shared/metrics.js';
import { LEAN_MONITORING } from '../support/configurations.js';
import { runSynthesis } from '../support/run-synthesis.js';

const USAGE: GenerationUsage = {
  transitions: 8,
  lambdaGbSeconds: 1,
  lambdaRequests: 2,
  dispatcherInvocations: 3,
  dispatcherGbSeconds: 0.5,
  queueWriteUnits: 5,
  queueReadUnits: 6,
  polls: 1,
  visibleChanges: 2,
  apiGets: 5,
  apiGetsQueued: 30,
  apiListPages: 0.6,
  apiListedChecks: 30,
  images: 1,
  apiCreates: 1,
  apiBatchGets: 0,
  apiBatchReadUnits: 0,
};

/** A deployment as the cost model sees it; the synthesized one is checked below. */
const SIZING: DeploymentSizing = {
  apiMemoryMb: 256,
  reconcilerMemoryMb: 256,
  dispatchMemoryMb: 128,
  reconcilerRunsPerGeneration: 2,
  sweepsPerMonth: 43_800,
  accounts: 1,
};

let template: SynthesizedTemplate;

beforeAll(() => {
  // The same synthesis as `synthesizeTemplate()` (cdk.json's context, no bundling), shared by the run.
  template = runSynthesis().template;
});

const ofType = (type: string) =>
  Object.values(template.Resources).filter((resource) => resource.Type === type);
const line = (lines: ReturnType<typeof fixedMonthlyCost>, prefix: string) =>
  lines.find((each) => each.item.startsWith(prefix));

describe('the fixed monthly cost, counted in the synthesized template', () => {
  it('counts every dashboard and KMS key the stack creates', () => {
    // Act
    const lines = fixedMonthlyCost(template);

    // Assess
    expect(line(lines, 'CloudWatch dashboards')?.count).toBe(ofType('AWS::CloudWatch::Dashboard').length);
    expect(line(lines, 'KMS keys')?.count).toBe(ofType('AWS::KMS::Key').length);
  });

  it('counts the secrets the stack creates and the DashScope key it reads', () => {
    // Act
    const secrets = line(fixedMonthlyCost(template), 'Secrets Manager')?.count;

    // Assess
    expect(secrets).toBe(ofType('AWS::SecretsManager::Secret').length + 1);
  });

  it('counts each metric a metric-math alarm reads, and one per plain alarm', () => {
    // Prepare
    const alarms = ofType('AWS::CloudWatch::Alarm');
    const math = alarms.filter((alarm) => alarm.Properties?.Metrics !== undefined);

    // Act
    const count = line(fixedMonthlyCost(template), 'CloudWatch alarm metrics')?.count ?? 0;

    // Assess
    expect(math.length).toBeGreaterThan(0);
    expect(count).toBeGreaterThan(alarms.length);
  });

  it('refuses a resource type it does not know the fixed cost of', () => {
    // Prepare
    const withNat = { Resources: { ...template.Resources, Nat: { Type: 'AWS::EC2::NatGateway' } } };

    // Act / Assess
    expect(() => fixedMonthlyCost(withNat)).toThrow(/AWS::EC2::NatGateway/);
  });

  it('counts no custom metric series when every function has metrics disabled', () => {
    // Prepare
    const disabled = {
      Resources: Object.fromEntries(
        Object.entries(template.Resources).map(([id, resource]) =>
          resource.Type === 'AWS::Lambda::Function'
            ? [
                id,
                {
                  ...resource,
                  Properties: {
                    ...resource.Properties,
                    Environment: {
                      Variables: {
                        ...(resource.Properties?.Environment as { Variables?: object } | undefined)
                          ?.Variables,
                        POWERTOOLS_METRICS_DISABLED: 'true',
                      },
                    },
                  },
                },
              ]
            : [id, resource],
        ),
      ),
    };

    // Act
    const full = line(fixedMonthlyCost(template), 'custom metric')?.count;
    const none = line(fixedMonthlyCost(disabled), 'custom metric')?.count;

    // Assess
    expect(full).toBe(Object.values(CUSTOM_METRIC_SERIES).reduce((sum, count) => sum + count, 0));
    expect(none).toBe(0);
  });

  it('keeps the lean configuration within $2 a month, every alarm on AWS’s own metrics included', () => {
    // Prepare
    const lean = runSynthesis(LEAN_MONITORING).template;
    const alarmsOf = (t: SynthesizedTemplate) =>
      Object.values(t.Resources).filter((resource) => resource.Type === 'AWS::CloudWatch::Alarm').length;

    // Act
    const lines = fixedMonthlyCost(lean);
    const total = lines.reduce((sum, each) => sum + each.usdPerMonth, 0);

    // Assess
    expect(total).toBeLessThanOrEqual(2);
    expect(line(lines, 'CloudWatch dashboards')?.count).toBe(0);
    expect(line(lines, 'KMS keys')?.count).toBe(0);
    expect(line(lines, 'custom metric')?.count).toBe(0);
    // Every alarm but the admission queue's, whose metric is a custom one (docs/operations.md).
    expect(alarmsOf(lean)).toBe(alarmsOf(template) - 1);
  });

  it('has a series count for every metric the functions emit', () => {
    expect(Object.keys(CUSTOM_METRIC_SERIES).sort()).toEqual(Object.values(METRIC).sort());
  });
});

describe('the deployment the cost model reads, from the synthesized template', () => {
  const fn = (id: string) => template.Resources[id]?.Properties;
  /** The logical id of the function a rule's first target names. */
  const targetOf = (rule: { Properties?: Record<string, unknown> } | undefined): string => {
    const targets = (rule?.Properties?.Targets ?? []) as Array<{ Arn?: { 'Fn::GetAtt'?: [string] } }>;
    return targets[0]?.Arn?.['Fn::GetAtt']?.[0] ?? '';
  };

  it('reads each function’s memory where the stack wires it: the API, the reconciler, the dispatcher', () => {
    // Prepare
    const rules = ofType('AWS::Events::Rule');
    const schedule = rules.find((rule) => rule.Properties?.ScheduleExpression !== undefined);
    const statusChanges = rules.find((rule) =>
      String(JSON.stringify(rule.Properties?.EventPattern)).includes(
        'Step Functions Execution Status Change',
      ),
    );
    const getAtts = ofType('AWS::ApiGatewayV2::Integration').map(
      (integration) =>
        (integration.Properties?.IntegrationUri as { 'Fn::GetAtt'?: [string] } | undefined)?.[
          'Fn::GetAtt'
        ]?.[0],
    );
    const [api] = getAtts.filter((id) => id !== undefined);

    // Act
    const sizing = deploymentSizing(template);

    // Assess
    expect(sizing.dispatchMemoryMb).toBe(fn(targetOf(schedule))?.MemorySize);
    expect(sizing.reconcilerMemoryMb).toBe(fn(targetOf(statusChanges))?.MemorySize);
    expect(sizing.apiMemoryMb).toBe(fn(api ?? '')?.MemorySize);
  });

  it('runs the reconciler twice per generation (RUNNING and the end: its rule names no status) and sweeps once a minute', () => {
    // Act
    const sizing = deploymentSizing(template);

    // Assess
    const pattern = JSON.stringify(
      ofType('AWS::Events::Rule').map(
        (rule) => rule.Properties?.EventPattern ?? rule.Properties?.ScheduleExpression,
      ),
    );
    expect(pattern).toContain('rate(1 minute)');
    expect(pattern).not.toContain('"status"');
    expect(sizing.reconcilerRunsPerGeneration).toBe(2);
    expect(sizing.sweepsPerMonth).toBe(730 * 60);
    expect(sizing.accounts).toBe(1);
  });

  it('prices the sweeps of a month with nothing queued among the fixed costs', () => {
    // Act
    const sweeps = line(fixedMonthlyCost(template), "the dispatcher's sweeps");

    // Assess: each an invocation and its lease's take and release, at least.
    const floor = USD_PER_LAMBDA_REQUEST + 2 * USD_PER_DYNAMODB_WRU;
    expect(sweeps?.count).toBe(deploymentSizing(template).sweepsPerMonth);
    expect(sweeps?.usdPerMonth).toBeCloseTo(
      deploymentSizing(template).sweepsPerMonth * idleSweepCost(deploymentSizing(template), true),
      9,
    );
    expect(idleSweepCost(deploymentSizing(template), true)).toBeGreaterThan(floor);
  });
});

describe('the all-in cost of one generation', () => {
  it('adds its lines up to its total', () => {
    // Act
    const { total, ...lines } = allInCost(USAGE, SIZING);

    // Assess
    expect(total).toBeCloseTo(
      Object.values(lines).reduce((sum, value) => sum + value, 0),
      12,
    );
  });

  it('prices the transitions the simulation counted', () => {
    expect(allInCost(USAGE, SIZING).stepFunctions).toBeCloseTo(8 * USD_PER_STATE_TRANSITION, 12);
  });

  it('writes the index 3 times plus once per visible change, each on the table and its GSIs, and once per reconciler run', () => {
    // Act
    const noQueue = {
      ...USAGE,
      apiGets: 0,
      apiListPages: 0,
      apiListedChecks: 0,
      queueWriteUnits: 0,
      queueReadUnits: 0,
    };
    const without = allInCost({ ...noQueue, visibleChanges: 0 }, SIZING).dynamodb;
    const withTwo = allInCost({ ...noQueue, visibleChanges: 2 }, SIZING).dynamodb;
    const oneRun = allInCost(
      { ...noQueue, visibleChanges: 0 },
      { ...SIZING, reconcilerRunsPerGeneration: 1 },
    ).dynamodb;

    // Assess
    const perWrite = (1 + ALL_IN_ASSUMPTIONS.indexesPerWrite) * USD_PER_DYNAMODB_WRU;
    const reconciler = 2 * ALL_IN_ASSUMPTIONS.reconcilerWriteUnits * USD_PER_DYNAMODB_WRU;
    expect(without).toBeCloseTo(ALL_IN_ASSUMPTIONS.fixedWrites * perWrite + reconciler, 12);
    expect(withTwo - without).toBeCloseTo(2 * perWrite, 12);
    expect(without - oneRun).toBeCloseTo(reconciler / 2, 12);
  });

  it("prices the admission queue's units as the simulation counted them", () => {
    // Act
    const base = allInCost({ ...USAGE, queueWriteUnits: 0, queueReadUnits: 0 }, SIZING).dynamodb;
    const withUnits = allInCost({ ...USAGE, queueWriteUnits: 3, queueReadUnits: 4 }, SIZING).dynamodb;

    // Assess
    expect(withUnits - base).toBeCloseTo(3 * USD_PER_DYNAMODB_WRU + 4 * USD_PER_DYNAMODB_RRU, 12);
  });

  it("bills the dispatcher's invocations and GB-s as Lambda", () => {
    // Act
    const without = allInCost({ ...USAGE, dispatcherInvocations: 0, dispatcherGbSeconds: 0 }, SIZING).lambda;
    const withDispatcher = allInCost(
      { ...USAGE, dispatcherInvocations: 2, dispatcherGbSeconds: 1 },
      SIZING,
    ).lambda;

    // Assess
    expect(withDispatcher - without).toBeCloseTo(2 * USD_PER_LAMBDA_REQUEST + USD_PER_LAMBDA_GB_SECOND, 12);
  });

  it('bills the reconciler at its synthesized memory, once per run', () => {
    // Act
    const at = (sizing: Partial<DeploymentSizing>) => allInCost(USAGE, { ...SIZING, ...sizing }).lambda;

    // Assess
    const run =
      (SIZING.reconcilerMemoryMb / 1024) * ALL_IN_ASSUMPTIONS.reconcilerSeconds * USD_PER_LAMBDA_GB_SECOND;
    expect(at({ reconcilerRunsPerGeneration: 3 }) - at({})).toBeCloseTo(run + USD_PER_LAMBDA_REQUEST, 12);
    expect(at({ reconcilerMemoryMb: 512 }) - at({})).toBeCloseTo(2 * run, 12);
  });

  it('costs more with more API reads', () => {
    expect(allInCost({ ...USAGE, apiGets: 50 }, SIZING).total).toBeGreaterThan(
      allInCost(USAGE, SIZING).total,
    );
  });

  it('charges a listing client its pages, a GET-each client a GET per check, for the wait', () => {
    // Act
    const listing = allInCost(USAGE, SIZING, 'list');
    const getEach = allInCost(USAGE, SIZING, 'get-each');

    // Assess: 1 POST and 5 GETs either way, then 0.6 pages or 30 GETs.
    expect(listing.httpApi).toBeCloseTo((1 + 5 + 0.6) * USD_PER_HTTP_API_REQUEST, 12);
    expect(getEach.httpApi).toBeCloseTo((1 + 5 + 30) * USD_PER_HTTP_API_REQUEST, 12);
    const reads = (gets: number, more: number) =>
      (gets * ALL_IN_ASSUMPTIONS.rruPerGet + more) * USD_PER_DYNAMODB_RRU;
    const index = allInCost(
      { ...USAGE, apiGets: 0, apiGetsQueued: 0, apiListPages: 0, apiListedChecks: 0 },
      SIZING,
    ).dynamodb;
    expect(getEach.dynamodb - index).toBeCloseTo(reads(5, 30 * ALL_IN_ASSUMPTIONS.rruPerQueuedGet), 12);
    expect(listing.dynamodb - index).toBeCloseTo(
      reads(5, 30 * ALL_IN_ASSUMPTIONS.rruPerListedGeneration + 0.6 * ALL_IN_ASSUMPTIONS.rruPerListPage),
      12,
    );
  });

  it('charges a batch’s client its share of the batch’s POST and of its GETs of the batch, and no GET of the generation', () => {
    // Prepare: a line of a 10,000-line batch its client read 3,600 times, 126 units each.
    const line = { ...USAGE, apiCreates: 1 / 10_000, apiBatchGets: 0.36, apiBatchReadUnits: 0.36 * 126 };
    const index = allInCost(
      { ...USAGE, apiGets: 0, apiGetsQueued: 0, apiListPages: 0, apiListedChecks: 0 },
      SIZING,
    ).dynamodb;

    // Act
    const following = allInCost(line, SIZING, 'batch');

    // Assess
    expect(following.httpApi).toBeCloseTo((1 / 10_000 + 0.36) * USD_PER_HTTP_API_REQUEST, 12);
    expect(following.dynamodb - index).toBeCloseTo(0.36 * 126 * USD_PER_DYNAMODB_RRU, 12);
    const gets = allInCost({ ...line, apiBatchGets: 0, apiBatchReadUnits: 0 }, SIZING, 'batch').lambda;
    const perGet =
      (SIZING.apiMemoryMb / 1024) * ALL_IN_ASSUMPTIONS.apiBatchGetSeconds * USD_PER_LAMBDA_GB_SECOND +
      USD_PER_LAMBDA_REQUEST;
    expect(following.lambda - gets).toBeCloseTo(0.36 * perGet, 12);
  });

  it('reads a batch’s GET for its item, six COUNT queries growing with its keys (0.5 each at least), and the counters', () => {
    const a = ALL_IN_ASSUMPTIONS;
    const empty = batchGetReadUnits([0, 0, 0, 0, 0, 0]);
    expect(empty).toBe(a.rruBatchItem + 6 * a.rruBatchCountMin + a.rruBatchEstimate);
    // 10,000 keys of ~100 bytes: about 1 MB, 125 units, whichever count they are in.
    const full = batchGetReadUnits([10_000, 0, 0, 0, 0, 0]);
    expect(full - empty + a.rruBatchCountMin).toBeCloseTo(
      Math.ceil((10_000 * a.byBatchKeyBytes) / 4096) / 2,
      9,
    );
    expect(full).toBeGreaterThan(120);
    expect(full).toBeLessThan(130);
  });
});
