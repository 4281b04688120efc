import { beforeAll, describe, expect, it } from 'vitest';
import {
  ALL_IN_ASSUMPTIONS,
  allInCost,
  CUSTOM_METRIC_SERIES,
  fixedMonthlyCost,
  type GenerationUsage,
} from '../../bench/poll-sim/all-in.js';
import {
  USD_PER_DYNAMODB_WRU,
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
  queueWrites: 5,
  queueReads: 6,
  polls: 1,
  visibleChanges: 2,
  apiGets: 5,
  images: 1,
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
                    Environment: { Variables: { POWERTOOLS_METRICS_DISABLED: 'true' } },
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

describe('the all-in cost of one generation', () => {
  it('adds its lines up to its total', () => {
    // Act
    const { total, ...lines } = allInCost(USAGE);

    // Assess
    expect(total).toBeCloseTo(
      Object.values(lines).reduce((sum, value) => sum + value, 0),
      12,
    );
  });

  it('prices the transitions the simulation counted', () => {
    expect(allInCost(USAGE).stepFunctions).toBeCloseTo(8 * USD_PER_STATE_TRANSITION, 12);
  });

  it('writes the index 4 times plus once per visible change, each on the table and its GSIs', () => {
    // Act
    const noQueue = { ...USAGE, apiGets: 0, queueWrites: 0, queueReads: 0 };
    const without = allInCost({ ...noQueue, visibleChanges: 0 }).dynamodb;
    const withTwo = allInCost({ ...noQueue, visibleChanges: 2 }).dynamodb;

    // Assess
    const perWrite = (1 + ALL_IN_ASSUMPTIONS.indexesPerWrite) * USD_PER_DYNAMODB_WRU;
    expect(without).toBeCloseTo(ALL_IN_ASSUMPTIONS.fixedWrites * perWrite, 12);
    expect(withTwo - without).toBeCloseTo(2 * perWrite, 12);
  });

  it("prices the admission queue's writes on the table and one index", () => {
    // Act
    const without = allInCost({ ...USAGE, queueWrites: 0 }).dynamodb;
    const withThree = allInCost({ ...USAGE, queueWrites: 3 }).dynamodb;

    // Assess
    const perWrite = (1 + ALL_IN_ASSUMPTIONS.queueIndexesPerWrite) * USD_PER_DYNAMODB_WRU;
    expect(withThree - without).toBeCloseTo(3 * perWrite, 12);
  });

  it("bills the dispatcher's invocations and GB-s as Lambda", () => {
    // Act
    const without = allInCost({ ...USAGE, dispatcherInvocations: 0, dispatcherGbSeconds: 0 }).lambda;
    const withDispatcher = allInCost({ ...USAGE, dispatcherInvocations: 2, dispatcherGbSeconds: 1 }).lambda;

    // Assess
    expect(withDispatcher - without).toBeCloseTo(2 * USD_PER_LAMBDA_REQUEST + USD_PER_LAMBDA_GB_SECOND, 12);
  });

  it('costs more with more API reads', () => {
    expect(allInCost({ ...USAGE, apiGets: 50 }).total).toBeGreaterThan(allInCost(USAGE).total);
  });
});
