import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { StateMachine } from 'aws-local-stepfunctions';
import { beforeAll, describe, expect, it } from 'vitest';
import { DOWNLOAD_BUDGET, persistWorstCaseMs } from '../../functions/shared/download-budget.js';
import {
  PERMANENT_ERROR_NAMES,
  RETRYABLE_ERROR_NAMES,
  WORKFLOW_ERROR,
} from '../../functions/shared/errors.js';
import { ANNOUNCEMENT_ERROR } from '../../functions/shared/events.js';
import { generationRequestSchema } from '../../functions/shared/generation-request.js';
import { createApp } from '../../infra/app.js';
import { parseStackConfig, stackConfigSchema } from '../../infra/config.js';
import { STATE } from '../../infra/constructs/workflow.js';
import { stateMachineDefinition } from '../../local/runner.js';
import { functionId, renderedInput, synthesize } from './template.js';

type Json = Record<string, any>;

const context = { 'aws:cdk:bundling-stacks': [], generation: { deadlineSeconds: 1800, maxPolls: 500 } };

let template: Template;
let definition: Json;

beforeAll(() => {
  const { stack } = createApp({ context });
  template = Template.fromStack(stack);
  definition = stateMachineDefinition(template.toJSON() as never) as unknown as Json;
});

/** The project's Lambdas, without the ones CDK adds for its own custom resources. */
function ourFunctions(): Record<string, Json> {
  return Object.fromEntries(
    Object.entries(template.findResources('AWS::Lambda::Function')).filter(
      ([id]) => !id.startsWith('BucketNotificationsHandler'),
    ),
  );
}

function functionLogicalId(entryHint: string): string {
  const functions = template.findResources('AWS::Lambda::Function');
  const match = Object.entries(functions).find(([id]) => id.includes(entryHint));
  if (!match) throw new Error(`no function like ${entryHint}`);
  return match[0];
}

function policyStatementsOf(logicalId: string): Json[] {
  const roleRef =
    template.findResources('AWS::Lambda::Function')[logicalId]?.Properties.Role['Fn::GetAtt'][0];
  const policies = template.findResources('AWS::IAM::Policy');
  return Object.values(policies)
    .filter((p) => p.Properties.Roles.some((r: Json) => r.Ref === roleRef))
    .flatMap((p) => p.Properties.PolicyDocument.Statement);
}

describe('state machine', () => {
  // The local runner does not validate the definition on each start (it is this one): this does.
  it('passes the ASL validator of the engine that runs it locally', () => {
    const validated = (candidate: Json) =>
      new StateMachine(structuredClone(candidate) as never, { validationOptions: { checkArn: false } });

    expect(() => validated(definition)).not.toThrow();
    const broken = structuredClone(definition);
    broken.States[broken.StartAt].Next = 'NoSuchState';
    expect(() => validated(broken)).toThrow(/NoSuchState/);
  });

  it('is a Standard workflow with X-Ray tracing', () => {
    template.hasResourceProperties('AWS::StepFunctions::StateMachine', {
      StateMachineType: 'STANDARD',
      TracingConfiguration: { Enabled: true },
    });
  });

  it('times out later than the deadline plus a minute per Task state (test/infra/budget.test.ts has the sum)', () => {
    expect(definition.TimeoutSeconds).toBeGreaterThan(1800 + 5 * 60);
    expect(definition.TimeoutSeconds % 60).toBe(0);
  });

  it('runs Init → Admit → Submit → Wait → Poll → Check status', () => {
    expect(definition.StartAt).toBe(STATE.init);
    expect(definition.States[STATE.init].Next).toBe(STATE.admit);
    expect(definition.States[STATE.admit]).toMatchObject({
      Type: 'Task',
      Resource: expect.stringMatching(/lambda:invoke\.waitForTaskToken$/),
      ResultPath: '$.admission',
      Next: STATE.submit,
    });
    expect(definition.States[STATE.admit].Parameters.Payload).toEqual({
      'id.$': '$.id',
      'request.$': '$.request',
      'taskToken.$': '$$.Task.Token',
      'executionId.$': '$$.Execution.Id',
      'startedAt.$': '$$.Execution.StartTime',
    });
    expect(definition.States[STATE.submit].Next).toBe(STATE.wait);
    expect(definition.States[STATE.wait]).toMatchObject({
      Type: 'Wait',
      SecondsPath: '$.task.nextPollSeconds',
      Next: STATE.poll,
    });
    expect(definition.States[STATE.poll].Next).toBe(STATE.check);
  });

  it('loops back to Wait by default and persists on success', () => {
    const check = definition.States[STATE.check];
    expect(check.Default).toBe(STATE.wait);
    expect(check.Choices).toContainEqual({
      Variable: '$.task.status',
      StringEquals: 'succeeded',
      Next: STATE.persist,
    });
    expect(definition.States[STATE.persist].Next).toBe(STATE.notifySucceeded);
    expect(definition.States[STATE.notifySucceeded].Next).toBe(STATE.done);
  });

  it.each([
    ['failed', WORKFLOW_ERROR.taskFailed],
    ['canceled', WORKFLOW_ERROR.taskCanceled],
    ['expired', WORKFLOW_ERROR.taskExpired],
  ])('ends a %s task failing with %s, through the notifier', (status, error) => {
    const choice = definition.States[STATE.check].Choices.find((c: Json) => c.StringEquals === status);
    expect(definition.States[choice.Next]).toMatchObject({
      Type: 'Pass',
      Parameters: { Error: error, 'Cause.$': '$.task.error.message' },
      ResultPath: '$.failure',
      Next: STATE.notifyFailed,
    });
  });

  it('ends every failure in one Fail state that takes the name and cause from $.failure', () => {
    expect(definition.States[STATE.notifyFailed].Next).toBe(STATE.failed);
    expect(definition.States[STATE.failed]).toMatchObject({
      Type: 'Fail',
      ErrorPath: '$.failure.Error',
      CausePath: '$.failure.Cause',
    });
  });

  it.each([
    [STATE.notifySucceeded, STATE.notifySucceededLastAttempt, STATE.done],
    [STATE.notifyFailed, STATE.notifyFailedLastAttempt, STATE.failed],
  ])(
    'never lets the notifier change the outcome: %s’s errors are caught toward the same end',
    (notify, last, end) => {
      expect(definition.States[notify].Next).toBe(end);
      expect(definition.States[notify].Catch).toEqual([
        // An event EventBridge kept refusing: the last attempt dead-letters it.
        { ErrorEquals: [ANNOUNCEMENT_ERROR.notPublished], ResultPath: '$.notificationError', Next: last },
        { ErrorEquals: ['States.ALL'], ResultPath: '$.notificationError', Next: end },
      ]);
      expect(definition.States[last].Next).toBe(end);
      expect(definition.States[last].Catch).toEqual([
        { ErrorEquals: ['States.ALL'], ResultPath: '$.notificationError', Next: end },
      ]);
    },
  );

  it.each([STATE.notifySucceeded, STATE.notifyFailed])(
    'runs %s again when EventBridge refused its event, a bounded number of times with backoff and full jitter',
    (name) => {
      const retriers = definition.States[name].Retry as Json[];
      const publish = retriers.filter((r) => r.ErrorEquals.includes(ANNOUNCEMENT_ERROR.notPublished));
      expect(publish).toEqual([
        {
          ErrorEquals: [ANNOUNCEMENT_ERROR.notPublished],
          MaxAttempts: 3,
          IntervalSeconds: 15,
          BackoffRate: 2,
          MaxDelaySeconds: 60,
          JitterStrategy: 'FULL',
        },
      ]);
      // Nothing else Notify throws is retried (its webhook's failures never throw).
      const retried = retriers.flatMap((r) => r.ErrorEquals as string[]);
      expect(retried).not.toContain('States.ALL');
      expect(retried).not.toContain(ANNOUNCEMENT_ERROR.lost);
    },
  );

  it.each([STATE.notifySucceededLastAttempt, STATE.notifyFailedLastAttempt])(
    'calls the notifier once more as its last attempt in %s, which dead-letters a refused event and is not run again for it',
    (name) => {
      const state = definition.States[name];
      expect(state.Resource).toBe(definition.States[STATE.notifyFailed].Resource);
      expect(state.Parameters).toMatchObject({ lastAttempt: true, 'state.$': '$' });
      expect(definition.States[STATE.notifyFailed].Parameters.lastAttempt).toBeUndefined();
      const retried = (state.Retry as Json[]).flatMap((r) => r.ErrorEquals as string[]);
      expect(retried).not.toContain(ANNOUNCEMENT_ERROR.notPublished);
      expect(retried).toContain('Lambda.TooManyRequestsException');
    },
  );

  it('fails with DeadlineExceeded when the poll reports the deadline passed, before any other status', () => {
    const choices = definition.States[STATE.check].Choices as Json[];
    const deadline = choices.findIndex((c) => c.Variable === '$.task.deadlineExceeded');
    expect(deadline).toBeGreaterThanOrEqual(0);
    expect(choices.findIndex((c) => c.StringEquals === 'failed')).toBeGreaterThan(deadline);
    expect(definition.States[choices[deadline]?.Next]).toMatchObject({
      Type: 'Pass',
      Parameters: { Error: WORKFLOW_ERROR.deadlineExceeded },
    });
  });

  it('caps the polls with the configured limit, far below the history limit', () => {
    const cap = (definition.States[STATE.check].Choices as Json[]).find(
      (c) => c.Variable === '$.task.pollCount',
    );
    expect(cap?.NumericGreaterThanEquals).toBe(500);
    expect(definition.States[cap?.Next]).toMatchObject({
      Type: 'Pass',
      Parameters: { Error: WORKFLOW_ERROR.pollLimitExceeded, Cause: 'No result after 500 polls' },
    });
  });

  it('retries Poll and Persist on the retryable error names and Lambda service errors, with backoff and full jitter', () => {
    for (const name of [STATE.poll, STATE.persist]) {
      const retrier = (definition.States[name].Retry as Json[]).find((r) =>
        r.ErrorEquals.includes('DashScopeThrottledError'),
      );
      expect(retrier?.ErrorEquals).toEqual(
        expect.arrayContaining([...RETRYABLE_ERROR_NAMES, 'Lambda.ServiceException', 'States.Timeout']),
      );
      for (const permanent of PERMANENT_ERROR_NAMES) expect(retrier?.ErrorEquals).not.toContain(permanent);
      expect(retrier).toMatchObject({ BackoffRate: 2, JitterStrategy: 'FULL' });
      expect(retrier?.MaxDelaySeconds).toBeGreaterThan(0);
    }
  });

  it.each([
    STATE.submit,
    STATE.poll,
    STATE.persist,
    STATE.notifySucceeded,
    STATE.notifyFailed,
    STATE.notifySucceededLastAttempt,
    STATE.notifyFailedLastAttempt,
  ])('retries a Lambda throttle (the function never ran) on %s, with backoff and full jitter', (name) => {
    const retriers = (definition.States[name].Retry as Json[]).filter((r) =>
      r.ErrorEquals.includes('Lambda.TooManyRequestsException'),
    );
    expect(retriers).toHaveLength(1);
    expect(retriers[0]?.ErrorEquals).toEqual(['Lambda.TooManyRequestsException']);
    expect(retriers[0]?.MaxAttempts).toBeGreaterThanOrEqual(5);
    expect(retriers[0]).toMatchObject({ BackoffRate: 2, JitterStrategy: 'FULL' });
    expect(retriers[0]?.MaxDelaySeconds).toBeGreaterThan(0);
  });

  it('retries Submit at most once on Lambda service errors, which may hide a created task', () => {
    const retry = definition.States[STATE.submit].Retry as Json[];
    const lambdaRetriers = retry.filter((r) =>
      (r.ErrorEquals as string[]).some(
        (e) => e.startsWith('Lambda.') && e !== 'Lambda.TooManyRequestsException',
      ),
    );
    expect(lambdaRetriers).toHaveLength(1);
    expect(lambdaRetriers[0]?.MaxAttempts).toBe(1);
    expect(lambdaRetriers[0]?.ErrorEquals).toContain('DashScopeTimeoutError');
  });

  it('retries an ambiguous submit (no answer) once at most, and never on permanent errors', () => {
    const retry = definition.States[STATE.submit].Retry as Json[];
    const timeout = retry.filter((r) => r.ErrorEquals.includes('DashScopeTimeoutError'));
    expect(timeout).toHaveLength(1);
    expect(timeout[0]?.MaxAttempts).toBe(1);
    const retried = retry.flatMap((r) => r.ErrorEquals as string[]);
    for (const permanent of PERMANENT_ERROR_NAMES) expect(retried).not.toContain(permanent);
  });

  it('retries Submit on a transient secret read, which fails before any submit is sent', () => {
    const retry = definition.States[STATE.submit].Retry as Json[];
    const retriers = retry.filter((r) => r.ErrorEquals.includes('SecretUnavailableError'));
    expect(retriers).toHaveLength(1);
    expect(retriers[0]?.ErrorEquals).not.toContain('DashScopeTimeoutError');
    expect(retriers[0]?.MaxAttempts).toBeGreaterThan(1);
  });

  it('sends every Lambda failure, name and cause kept, through the notifier to the Fail state', () => {
    for (const name of [STATE.submit, STATE.poll, STATE.persist]) {
      expect(definition.States[name].Catch).toEqual([
        { ErrorEquals: ['States.ALL'], ResultPath: '$.failure', Next: STATE.notifyFailed },
      ]);
    }
  });

  it('uses no JSONata and no variables, which the local engine cannot run', () => {
    const text = JSON.stringify(definition);
    expect(text).not.toContain('JSONata');
    expect(text).not.toContain('"Assign"');
  });
});

describe('Persist time budget', () => {
  it('fits every image at its worst (all tries to their deadline, plus backoff) in the function timeout', () => {
    const persist = template.findResources('AWS::Lambda::Function')[functionLogicalId('FunctionsPersist')];

    expect(persist?.Properties.Timeout * 1000).toBeGreaterThanOrEqual(persistWorstCaseMs());
  });

  it('budgets for as many images as a request may ask for', () => {
    const ask = (n: number) => generationRequestSchema.safeParse({ prompt: 'p', n }).success;

    expect([ask(DOWNLOAD_BUDGET.maxImages), ask(DOWNLOAD_BUDGET.maxImages + 1)]).toEqual([true, false]);
  });
});

describe('bucket', () => {
  it('blocks all public access, encrypts and is retained', () => {
    template.hasResource('AWS::S3::Bucket', {
      DeletionPolicy: 'Retain',
      Properties: {
        PublicAccessBlockConfiguration: {
          BlockPublicAcls: true,
          BlockPublicPolicy: true,
          IgnorePublicAcls: true,
          RestrictPublicBuckets: true,
        },
        BucketEncryption: {
          ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
        },
      },
    });
  });

  it('denies every request that is not over TLS', () => {
    template.hasResourceProperties('AWS::S3::BucketPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
  });
});

describe('functions', () => {
  it('run on the newest Node runtime, arm64, with tracing and a log group each', () => {
    const functions = ourFunctions();
    expect(
      Object.keys(functions)
        .map((id) => id.replace(/[A-F0-9]{8}$/, ''))
        .sort(),
    ).toEqual([
      'ApiHandler',
      'EventsTrigger',
      'FunctionsAdmit',
      'FunctionsDispatcher',
      'FunctionsNotify',
      'FunctionsPersist',
      'FunctionsPoll',
      'FunctionsSubmit',
      'ReconcilerHandler',
    ]);
    for (const fn of Object.values(functions)) {
      expect(fn.Properties).toMatchObject({
        Runtime: 'nodejs24.x',
        Architectures: ['arm64'],
        TracingConfig: { Mode: 'Active' },
      });
      expect(fn.Properties.LoggingConfig.LogGroup).toBeDefined();
    }
  });

  it('reserve no concurrency by default, the dispatcher’s neither, and the configured concurrency per function', () => {
    for (const [id, fn] of Object.entries(ourFunctions())) {
      // The dispatcher runs one at a time through its lease in the table, not reserved concurrency.
      expect(fn.Properties.ReservedConcurrentExecutions, id).toBeUndefined();
    }
    const reserved = synthesize({ reservedConcurrency: { poll: 5, persist: 2, trigger: 1 } }).template;
    const of = (prefix: string) =>
      reserved.findResources('AWS::Lambda::Function')[functionId(reserved, prefix)]?.Properties
        .ReservedConcurrentExecutions;
    expect([of('FunctionsPoll'), of('FunctionsPersist'), of('EventsTrigger')]).toEqual([5, 2, 1]);
    expect(of('FunctionsSubmit')).toBeUndefined();
  });

  it('deploy on a new account: the default template reserves no concurrency anywhere', () => {
    // AWS keeps 100 of an account's concurrency unreserved; a new account's quota is 10 or 50.
    const { template: defaults } = synthesize();
    const reserving = Object.entries(defaults.toJSON().Resources as Record<string, Json>).filter(
      ([, resource]) => JSON.stringify(resource).includes('ReservedConcurrentExecutions'),
    );
    expect(reserving.map(([id]) => id)).toEqual([]);
  });

  it('read the API key from Secrets Manager, never from a plain variable', () => {
    for (const [id, fn] of Object.entries(ourFunctions())) {
      const variables = fn.Properties.Environment.Variables as Json;
      expect(variables.DASHSCOPE_API_KEY).toBeUndefined();
      expect(variables.WEBHOOK_SECRET).toBeUndefined();
      if (/Submit|Poll|Persist|ApiHandler/.test(id)) {
        expect(variables.DASHSCOPE_API_KEY_SECRET_ID).toBe('sd35/dashscope-api-key');
      }
    }
  });

  it('give only Persist access to the bucket: objects only under generations/, plus listing', () => {
    for (const hint of ['Submit', 'Poll']) {
      const actions = policyStatementsOf(functionLogicalId(hint)).flatMap((s) => [s.Action].flat());
      expect(actions.some((a: string) => a.startsWith('s3:'))).toBe(false);
    }
    const s3Statements = policyStatementsOf(functionLogicalId('Persist')).filter((s) =>
      [s.Action].flat().some((a: string) => a.startsWith('s3:')),
    );
    const [objects, others] = [
      s3Statements.filter((s) => JSON.stringify(s.Resource).includes('generations/*')),
      s3Statements.filter((s) => !JSON.stringify(s.Resource).includes('generations/*')),
    ];
    expect([objects[0]?.Action].flat().sort()).toEqual([
      's3:AbortMultipartUpload',
      's3:DeleteObject',
      's3:GetObject',
      's3:PutObject',
    ]);
    // S3 answers a missing manifest with 404 (not 403) only to a principal that may list the bucket.
    expect(others).toEqual([
      expect.objectContaining({
        Action: 's3:ListBucket',
        Resource: { 'Fn::GetAtt': [expect.any(String), 'Arn'] },
      }),
    ]);
  });

  it('grant each function read access to the API key secret only', () => {
    for (const hint of ['Submit', 'Poll', 'Persist']) {
      const secretStatements = policyStatementsOf(functionLogicalId(hint)).filter((s) =>
        [s.Action].flat().some((a: string) => a.startsWith('secretsmanager:')),
      );
      expect(secretStatements).toHaveLength(1);
      expect([secretStatements[0]?.Action].flat().sort()).toEqual([
        'secretsmanager:DescribeSecret',
        'secretsmanager:GetSecretValue',
      ]);
      expect(JSON.stringify(secretStatements[0]?.Resource)).toContain('secret:sd35/dashscope-api-key-??????');
    }
  });
});

const ROOT = path.join(import.meta.dirname, '..', '..');
const cdkJson = JSON.parse(readFileSync(path.join(ROOT, 'cdk.json'), 'utf8')) as {
  context: { generation: Record<string, unknown> };
};
const configurationDoc = readFileSync(path.join(ROOT, 'docs', 'configuration.md'), 'utf8');

describe('configuration', () => {
  it('fails synth with a message naming a bad field', () => {
    expect(() => parseStackConfig({ maxPolls: 5000 })).toThrow(/generation\.maxPolls/);
    expect(() => parseStackConfig({ dashscopeBaseUrl: 'http://insecure.example' })).toThrow(
      /generation\.dashscopeBaseUrl/,
    );
    expect(() => parseStackConfig({ unknownKey: 1 })).toThrow(/generation/);
  });

  it('has defaults for every field', () => {
    expect(parseStackConfig(undefined)).toMatchObject({
      deadlineSeconds: 3600,
      maxPolls: 1000,
      resultHosts: ['*.aliyuncs.com'],
    });
  });

  it.each([
    [{ defaultModel: 'stable-diffusion-4' }, /generation\.defaultModel/],
    [{ logLevel: 'TRACE' }, /generation\.logLevel/],
    [{ logRetentionDays: 31 }, /generation\.logRetentionDays: must be one of 1, 3, 5/],
    [{ workflowLogging: { level: 'VERBOSE' } }, /generation\.workflowLogging\.level/],
    [
      { workflowLogging: { includeExecutionData: 'yes' } },
      /generation\.workflowLogging\.includeExecutionData/,
    ],
    [{ metricsNamespace: 'AWS/Mine' }, /generation\.metricsNamespace: must not start with "AWS\/"/],
    [{ metricsNamespace: 'has space' }, /generation\.metricsNamespace/],
    [{ alarms: { email: 'not-an-address' } }, /generation\.alarms\.email: must be an email address/],
    [{ alarms: { failedExecutions: 0 } }, /generation\.alarms\.failedExecutions/],
    [{ deadlineSeconds: 30 }, /generation\.deadlineSeconds/],
    [{ resultHosts: ['https://x.example'] }, /generation\.resultHosts\.0/],
    [{ webhooks: 'on' }, /generation\.webhooks/],
    [{ reservedConcurrency: { poll: 0 } }, /generation\.reservedConcurrency\.poll: must be at least 1/],
    [{ reservedConcurrency: { api: 5 } }, /generation\.reservedConcurrency/],
    [{ requestEventSources: [] }, /generation\.requestEventSources/],
  ])('fails synth naming the field: %j', (generation, message) => {
    expect(() => parseStackConfig(generation)).toThrow(message);
    expect(() => synthesize(generation)).toThrow(message);
  });

  it('reads the JSON string `cdk synth -c generation=…` passes', () => {
    expect(parseStackConfig('{"maxPolls": 20}').maxPolls).toBe(20);
    expect(() => parseStackConfig('{"maxPolls": 5000}')).toThrow(/generation\.maxPolls/);
    expect(() => parseStackConfig('{maxPolls')).toThrow(/generation: must be a JSON object/);
  });

  it('has a default for every field, and cdk.json states them', () => {
    expect(parseStackConfig(cdkJson.context.generation)).toEqual(parseStackConfig({}));
    expect(parseStackConfig({})).toMatchObject({
      logLevel: 'INFO',
      logRetentionDays: 30,
      workflowLogging: { level: 'ERROR', includeExecutionData: false },
      metricsNamespace: 'Sd35Generation',
      alarms: { failedExecutions: 1 },
      bucket: {
        encryption: 's3',
        versioned: false,
        accessLogs: false,
        retainOnDelete: true,
        requestsExpireAfterDays: 30,
      },
    });
    expect(parseStackConfig({}).defaultModel).toBeUndefined();
  });

  it('is documented in docs/configuration.md, every key and every bucket key', () => {
    const bucketKeys = Object.keys(parseStackConfig({}).bucket);
    for (const key of [
      ...Object.keys(stackConfigSchema.shape),
      ...bucketKeys,
      'infrequentAccessAfterDays',
      'glacierAfterDays',
      'expireAfterDays',
    ]) {
      expect(configurationDoc, key).toContain(`\`${key}\``);
    }
  });
});

describe('correlation and timing passed to the functions', () => {
  // The state machine of `definition` above, synthesized with this file's context.

  it('gives Submit, Poll and Persist their part of the state plus the execution ARN and start', () => {
    expect(definition.States[STATE.submit].Parameters).toEqual({
      'id.$': '$.id',
      'request.$': '$.request',
      'admission.$': '$.admission',
      'executionId.$': '$$.Execution.Id',
      'startedAt.$': '$$.Execution.StartTime',
    });
    for (const name of [STATE.poll, STATE.persist]) {
      expect(definition.States[name].Parameters).toEqual({
        'id.$': '$.id',
        'request.$': '$.request',
        'task.$': '$.task',
        'executionId.$': '$$.Execution.Id',
        'startedAt.$': '$$.Execution.StartTime',
      });
    }
  });

  it('gives Notify the whole state, the execution ARN and its start time (request → images)', () => {
    for (const name of [
      STATE.notifySucceeded,
      STATE.notifyFailed,
      STATE.notifySucceededLastAttempt,
      STATE.notifyFailedLastAttempt,
    ]) {
      expect(definition.States[name].Parameters).toMatchObject({
        'state.$': '$',
        'executionId.$': '$$.Execution.Id',
        'startedAt.$': '$$.Execution.StartTime',
      });
    }
  });
});

describe('defaultModel', () => {
  it('leaves the request schema’s default alone when unset', () => {
    expect(definition.States[STATE.init].Next).toBe(STATE.admit);
    expect(definition.States[STATE.applyDefaults]).toBeUndefined();
    const api = template.findResources('AWS::Lambda::Function')[functionId(template, 'ApiHandler')]!;
    expect(api.Properties.Environment.Variables.DEFAULT_MODEL).toBeUndefined();
  });

  it('fills the configured model into every request that names none, however it was started', () => {
    const { template: turbo } = synthesize({
      defaultModel: 'stable-diffusion-3.5-large-turbo',
      schedules: [{ name: 'nightly', schedule: 'rate(1 day)', request: { prompt: 'an owl' } }],
    });
    const turboDefinition = stateMachineDefinition(turbo.toJSON() as never) as unknown as Json;
    expect(turboDefinition.States[STATE.init]).toMatchObject({
      Parameters: { defaults: { model: 'stable-diffusion-3.5-large-turbo' } },
      Next: STATE.applyDefaults,
    });
    expect(turboDefinition.States[STATE.applyDefaults]).toEqual({
      Type: 'Pass',
      Parameters: { 'id.$': '$.id', 'request.$': 'States.JsonMerge($.defaults, $.request, false)' },
      Next: STATE.admit,
    });
    for (const prefix of ['ApiHandler', 'EventsTrigger']) {
      const fn = turbo.findResources('AWS::Lambda::Function')[functionId(turbo, prefix)]!;
      expect(fn.Properties.Environment.Variables.DEFAULT_MODEL).toBe('stable-diffusion-3.5-large-turbo');
    }
    const schedule = Object.values(turbo.findResources('AWS::Events::Rule')).find(
      (rule) => rule.Properties.ScheduleExpression === 'rate(1 day)',
    );
    const input = renderedInput(schedule?.Properties.Targets[0], { id: 'e-1', time: '2026-03-01T00:00:00Z' });
    expect((input as { detail: { request: { model: string } } }).detail.request.model).toBe(
      'stable-diffusion-3.5-large-turbo',
    );
  });
});
