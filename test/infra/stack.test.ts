import { Match, Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  PERMANENT_ERROR_NAMES,
  RETRYABLE_ERROR_NAMES,
  WORKFLOW_ERROR,
} from '../../functions/shared/errors.js';
import { createApp } from '../../infra/app.js';
import { PERSIST_ALLOWANCE_SECONDS, parseStackConfig } from '../../infra/config.js';
import { STATE } from '../../infra/constructs/workflow.js';
import { stateMachineDefinition } from '../../local/runner.js';

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
  it('is a Standard workflow with X-Ray tracing', () => {
    template.hasResourceProperties('AWS::StepFunctions::StateMachine', {
      StateMachineType: 'STANDARD',
      TracingConfiguration: { Enabled: true },
    });
  });

  it('times out at the deadline plus the persist allowance', () => {
    expect(definition.TimeoutSeconds).toBe(1800 + PERSIST_ALLOWANCE_SECONDS);
  });

  it('runs Init → Submit → Wait → Poll → Check status', () => {
    expect(definition.StartAt).toBe(STATE.init);
    expect(definition.States[STATE.init].Next).toBe(STATE.submit);
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

  it('never lets the notifier change the outcome: its errors are caught toward the same end', () => {
    expect(definition.States[STATE.notifySucceeded].Catch).toEqual([
      { ErrorEquals: ['States.ALL'], ResultPath: '$.notificationError', Next: STATE.done },
    ]);
    expect(definition.States[STATE.notifyFailed].Catch).toEqual([
      { ErrorEquals: ['States.ALL'], ResultPath: '$.notificationError', Next: STATE.failed },
    ]);
  });

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

  it('retries Poll and Persist on exactly the retryable error names, with backoff and full jitter', () => {
    for (const name of [STATE.poll, STATE.persist]) {
      const retrier = (definition.States[name].Retry as Json[]).find((r) =>
        r.ErrorEquals.includes('DashScopeThrottledError'),
      );
      expect(retrier?.ErrorEquals).toEqual([...RETRYABLE_ERROR_NAMES]);
      expect(retrier).toMatchObject({ BackoffRate: 2, JitterStrategy: 'FULL' });
      expect(retrier?.MaxDelaySeconds).toBeGreaterThan(0);
    }
  });

  it('retries an ambiguous submit (no answer) once at most, and never on permanent errors', () => {
    const retry = definition.States[STATE.submit].Retry as Json[];
    const timeout = retry.filter((r) => r.ErrorEquals.includes('DashScopeTimeoutError'));
    expect(timeout).toHaveLength(1);
    expect(timeout[0]?.MaxAttempts).toBe(1);
    const retried = retry.flatMap((r) => r.ErrorEquals as string[]);
    for (const permanent of PERMANENT_ERROR_NAMES) expect(retried).not.toContain(permanent);
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
      'FunctionsNotify',
      'FunctionsPersist',
      'FunctionsPoll',
      'FunctionsSubmit',
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

  it('give only Persist access to the bucket, and only under generations/', () => {
    for (const hint of ['Submit', 'Poll']) {
      const actions = policyStatementsOf(functionLogicalId(hint)).flatMap((s) => [s.Action].flat());
      expect(actions.some((a: string) => a.startsWith('s3:'))).toBe(false);
    }
    const s3Statements = policyStatementsOf(functionLogicalId('Persist')).filter((s) =>
      [s.Action].flat().some((a: string) => a.startsWith('s3:')),
    );
    expect(s3Statements.length).toBeGreaterThan(0);
    for (const statement of s3Statements) {
      const resources = JSON.stringify(statement.Resource);
      expect(resources).toContain('generations/*');
      expect([statement.Action].flat()).not.toContain('s3:*');
    }
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
});
