import { Stack, Validations } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { Bucket } from 'aws-cdk-lib/aws-s3';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { describe, expect, it } from 'vitest';
import { METRIC } from '../../functions/shared/metrics.js';
import { createApp } from '../../infra/app.js';
import { parseStackConfig } from '../../infra/config.js';
import { actionsOf, FUNCTION_PREFIXES, functionId, statementsOf, synthesize } from './template.js';

/**
 * What makes the stack fit for a real account: cdk-nag clean, least privilege, private encrypted
 * storage with its options, and the logs, metrics, alarms and dashboard that explain a bad night.
 */
type Json = Record<string, any>;

/** Configurations that switch on every optional resource and every alternative path. */
const VARIANTS: Record<string, Record<string, unknown>> = {
  defaults: {},
  'everything on': {
    bucket: {
      encryption: 'kms',
      versioned: true,
      accessLogs: true,
      infrequentAccessAfterDays: 30,
      glacierAfterDays: 90,
      expireAfterDays: 400,
      retainOnDelete: false,
    },
    workflowLogging: { level: 'ALL', includeExecutionData: true },
    defaultModel: 'stable-diffusion-3.5-large-turbo',
    alarms: { email: 'oncall@example.com' },
    apiAuth: { mode: 'jwt', issuer: 'https://issuer.example.com', audience: ['sd35'] },
    schedules: [{ name: 'nightly', schedule: 'rate(1 day)', request: { prompt: 'an eagle' } }],
  },
  'everything off': { webhooks: false, workflowLogging: { level: 'OFF' }, monitoring: 'lean' },
};

/** Every acknowledgment recorded in the construct tree, with the construct it is recorded on. */
function acknowledgments(
  root: IConstruct,
): Array<{ path: string; id: string; reason: string; on: IConstruct }> {
  return root.node.findAll().flatMap((construct) =>
    construct.node.metadata
      .filter((entry) => entry.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
      .flatMap((entry) =>
        Object.entries(entry.data as Record<string, string>).map(([id, reason]) => ({
          path: construct.node.path,
          id: id.replace(/^annotation::/i, ''),
          reason,
          on: construct,
        })),
      ),
  );
}

describe('cdk-nag (AwsSolutions)', () => {
  it.each(Object.entries(VARIANTS))('finds nothing unacknowledged in the stack (%s)', (_name, generation) => {
    const { app } = synthesize(generation);
    const report = new AwsSolutionsChecks().validateScope(app);
    expect(
      report.violations.map(
        (v) => `${v.severity} ${v.ruleName}: ${v.violatingResources.map((r) => r.constructPath)}`,
      ),
    ).toEqual([]);
  });

  it('runs on every synth of the app, so a new finding fails it', () => {
    const { stack } = createApp({ context: { 'aws:cdk:bundling-stacks': [] } });
    new Bucket(stack, 'CarelessBucket');
    expect(() => Template.fromStack(stack)).toThrow(/AwsSolutions-S10/);
  });

  it('records each acknowledgment on a resource (never a stack) with a specific reason', () => {
    const { app } = synthesize(VARIANTS['everything on']);
    const acks = acknowledgments(app);
    expect(acks.length).toBeGreaterThan(0);
    for (const ack of acks) {
      expect(ack.on, ack.path).not.toBeInstanceOf(Stack);
      expect(ack.id).toMatch(/^AwsSolutions-[A-Z]+\d+(\[.+\])?$/);
      expect(ack.reason.length, `${ack.path} ${ack.id}`).toBeGreaterThanOrEqual(80);
    }
    // No blanket reason pasted everywhere: reasons repeat only for the same rule on like resources.
    const reasonsByRule = new Map<string, Set<string>>();
    for (const ack of acks) {
      const rule = ack.id.replace(/\[.*$/, '');
      reasonsByRule.set(ack.reason, (reasonsByRule.get(ack.reason) ?? new Set()).add(rule));
    }
    for (const rules of reasonsByRule.values()) expect(rules.size).toBe(1);
  });

  it('accepts only the wildcards and exceptions this design documents', () => {
    const { app } = synthesize();
    const kinds = new Set(
      acknowledgments(app).map((ack) =>
        ack.id
          .replace(/\[Resource::<[A-Za-z0-9]+\.Arn>:\*\]/, '[Resource::<function>:*]')
          .replace(/\[Resource::<StorageImages[A-Z0-9]+\.Arn>\//, '[Resource::<bucket>/'),
      ),
    );
    expect([...kinds].sort()).toEqual([
      'AwsSolutions-APIG4',
      'AwsSolutions-IAM5[Resource::*]',
      'AwsSolutions-IAM5[Resource::<bucket>/batches/*]',
      'AwsSolutions-IAM5[Resource::<bucket>/generations/*/webhook.json]',
      'AwsSolutions-IAM5[Resource::<bucket>/generations/*]',
      'AwsSolutions-IAM5[Resource::<bucket>/requests/*.result]',
      'AwsSolutions-IAM5[Resource::<bucket>/requests/*]',
      'AwsSolutions-IAM5[Resource::<bucket>/requests/batches/*]',
      'AwsSolutions-IAM5[Resource::<function>:*]',
      'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:<WorkflowStateMachine8F1B1C15.Name>:*]',
      'AwsSolutions-S1',
      'AwsSolutions-SF1',
      'AwsSolutions-SMG4',
      'AwsSolutions-SQS3',
    ]);
  });
});

describe('IAM', () => {
  const { template } = synthesize(VARIANTS['everything on']);
  const policies = Object.values(template.findResources('AWS::IAM::Policy'));
  const statements: Json[] = policies.flatMap((policy) => policy.Properties.PolicyDocument.Statement);

  it('lets functions put or delete items only in the admission queue (keys "admission#…"), and only those that need to', () => {
    const writers = FUNCTION_PREFIXES.filter((prefix) =>
      statementsOf(template, prefix).some((s) =>
        actionsOf(s).some((a) => a === 'dynamodb:PutItem' || a === 'dynamodb:DeleteItem'),
      ),
    );
    expect([...writers].sort()).toEqual(
      [
        'ApiHandler',
        'FunctionsAdmit',
        'FunctionsDispatcher',
        'FunctionsNotify',
        'FunctionsPoll',
        'ReconcilerHandler',
      ].sort(),
    );
    for (const prefix of writers) {
      for (const statement of statementsOf(template, prefix)) {
        if (!actionsOf(statement).some((a) => a === 'dynamodb:PutItem' || a === 'dynamodb:DeleteItem'))
          continue;
        expect(statement.Condition, prefix).toEqual({
          'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['admission#*'] },
        });
      }
    }
  });

  it('grants no wildcard action anywhere', () => {
    expect(statements.flatMap(actionsOf).filter((action) => action.includes('*'))).toEqual([]);
  });

  it('grants on "*" only what X-Ray and CloudWatch Logs delivery require (they have no resource-level permissions)', () => {
    const onEverything = statements.filter((s) => [s.Resource].flat().includes('*')).flatMap(actionsOf);
    expect(onEverything.length).toBeGreaterThan(0);
    for (const action of onEverything) {
      expect(action).toMatch(
        /^xray:(PutTraceSegments|PutTelemetryRecords|GetSamplingRules|GetSamplingTargets)$|^logs:(CreateLogDelivery|GetLogDelivery|UpdateLogDelivery|DeleteLogDelivery|ListLogDeliveries|PutResourcePolicy|DescribeResourcePolicies|DescribeLogGroups)$/,
      );
    }
  });

  it('attaches no AWS managed policy to any role but the provider that empties buckets on deletion', () => {
    for (const [id, role] of Object.entries(template.findResources('AWS::IAM::Role'))) {
      // CDK's autoDeleteObjects provider (retainOnDelete false only) runs with AWSLambdaBasicExecutionRole.
      if (id.startsWith('CustomS3AutoDeleteObjectsCustomResourceProviderRole')) continue;
      expect(role.Properties.ManagedPolicyArns, id).toBeUndefined();
    }
  });

  it('lets each function write its own log group only', () => {
    for (const prefix of FUNCTION_PREFIXES) {
      const logs = statementsOf(template, prefix).filter((s) =>
        actionsOf(s).some((a) => a.startsWith('logs:')),
      );
      expect(logs).toHaveLength(1);
      expect(actionsOf(logs[0]!).sort()).toEqual(['logs:CreateLogStream', 'logs:PutLogEvents']);
      expect(logs[0]!.Resource['Fn::GetAtt'][0]).toMatch(new RegExp(`^${prefix}Logs`));
    }
  });

  it('lets each function read only the secrets it needs', () => {
    const secretsOf = (prefix: string) =>
      statementsOf(template, prefix)
        .filter((s) => actionsOf(s).some((a) => a.startsWith('secretsmanager:')))
        .map((s) => JSON.stringify(s.Resource));
    for (const prefix of ['FunctionsSubmit', 'FunctionsPoll', 'FunctionsPersist', 'ApiHandler']) {
      expect(secretsOf(prefix)).toEqual([expect.stringContaining('secret:sd35/dashscope-api-key-??????')]);
    }
    expect(secretsOf('FunctionsNotify')).toEqual([expect.stringMatching(/FunctionsWebhookSigningSecret/)]);
    expect(secretsOf('EventsTrigger')).toEqual([]);
  });

  it('lets the state machine invoke its five functions and nothing else', () => {
    const role = Object.entries(template.findResources('AWS::IAM::Role')).find(([id]) =>
      id.startsWith('WorkflowStateMachineRole'),
    )?.[0];
    const invoked = policies
      .filter((policy) => policy.Properties.Roles.some((r: Json) => r.Ref === role))
      .flatMap((policy) => policy.Properties.PolicyDocument.Statement)
      .filter((s: Json) => actionsOf(s).includes('lambda:InvokeFunction'))
      .flatMap((s: Json) => [s.Resource].flat())
      .map(
        (resource: Json) =>
          JSON.stringify(resource).match(/Functions(Admit|Submit|Poll|Persist|Notify)/)?.[1],
      );
    expect(new Set(invoked)).toEqual(new Set(['Admit', 'Submit', 'Poll', 'Persist', 'Notify']));
  });
});

function imagesBucket(template: ReturnType<typeof synthesize>['template']): Json {
  const [bucket, ...others] = Object.entries(template.findResources('AWS::S3::Bucket')).filter(([id]) =>
    id.startsWith('StorageImages'),
  );
  expect(others).toEqual([]);
  return bucket?.[1] as Json;
}

const rulesOf = (bucket: Json): Json[] => bucket.Properties.LifecycleConfiguration.Rules;

describe('the images bucket by default', () => {
  const { template } = synthesize();
  const bucket = imagesBucket(template);

  it('is encrypted with S3-managed keys, not versioned, and retained when the stack is deleted', () => {
    expect(bucket.Properties.BucketEncryption).toEqual({
      ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
    });
    expect(bucket.Properties.VersioningConfiguration).toBeUndefined();
    expect(bucket.DeletionPolicy).toBe('Retain');
    expect(bucket.UpdateReplacePolicy).toBe('Retain');
    template.resourceCountIs('AWS::KMS::Key', 1); // the alarm topic's, not the bucket's
  });

  it('owns its objects (no ACLs) and writes no access logs', () => {
    expect(bucket.Properties.OwnershipControls).toEqual({
      Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }],
    });
    expect(bucket.Properties.LoggingConfiguration).toBeUndefined();
    template.resourceCountIs('AWS::S3::Bucket', 1);
  });

  it('aborts incomplete uploads after a day, cleans requests/ after 30 days, and keeps images for ever', () => {
    expect(rulesOf(bucket)).toEqual([
      {
        Id: 'AbortIncompleteUploads',
        AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 },
        Status: 'Enabled',
      },
      { Id: 'CleanUpRequests', Prefix: 'requests/', ExpirationInDays: 30, Status: 'Enabled' },
    ]);
  });
});

describe('bucket options', () => {
  it('encrypts with a KMS key of its own, rotated and kept with the bucket, granted per function', () => {
    const { template } = synthesize({ bucket: { encryption: 'kms' } });
    const bucket = imagesBucket(template);
    const keyId = Object.keys(template.findResources('AWS::KMS::Key')).find((id) =>
      id.startsWith('StorageImagesKey'),
    );
    expect(bucket.Properties.BucketEncryption.ServerSideEncryptionConfiguration).toEqual([
      {
        BucketKeyEnabled: true,
        ServerSideEncryptionByDefault: {
          SSEAlgorithm: 'aws:kms',
          KMSMasterKeyID: { 'Fn::GetAtt': [keyId, 'Arn'] },
        },
      },
    ]);
    template.hasResource('AWS::KMS::Key', {
      Properties: { EnableKeyRotation: true, Description: 'Encrypts the SD 3.5 images bucket' },
      DeletionPolicy: 'Retain',
    });
    // The bucket's key encrypts the generations index too: each grant names the actions it needs.
    const kmsActions = (prefix: string) => [
      ...new Set(
        statementsOf(template, prefix)
          .filter((s) => JSON.stringify(s.Resource).includes(String(keyId)))
          .flatMap(actionsOf)
          .sort(),
      ),
    ];
    expect(kmsActions('FunctionsPersist')).toEqual(['kms:Decrypt', 'kms:GenerateDataKey']);
    expect(kmsActions('FunctionsNotify')).toEqual(['kms:Decrypt', 'kms:GenerateDataKey']);
    expect(kmsActions('ApiHandler')).toEqual(['kms:Decrypt', 'kms:GenerateDataKey']);
    expect(kmsActions('EventsTrigger')).toEqual(['kms:Decrypt', 'kms:GenerateDataKey']);
    expect(kmsActions('FunctionsSubmit')).toEqual(['kms:Decrypt', 'kms:GenerateDataKey']);
    expect(kmsActions('FunctionsPersist')).toEqual(['kms:Decrypt', 'kms:GenerateDataKey']);
  });

  it('keeps every version when versioned, expiring noncurrent ones after the configured days', () => {
    const { template } = synthesize({ bucket: { versioned: true, noncurrentVersionExpirationDays: 14 } });
    const bucket = imagesBucket(template);
    expect(bucket.Properties.VersioningConfiguration).toEqual({ Status: 'Enabled' });
    expect(rulesOf(bucket)).toContainEqual({
      Id: 'NoncurrentVersions',
      NoncurrentVersionExpiration: { NoncurrentDays: 14 },
      ExpiredObjectDeleteMarker: true,
      Status: 'Enabled',
    });
  });

  it('moves images to Infrequent Access and Glacier and expires them as configured', () => {
    const { template } = synthesize({
      bucket: {
        infrequentAccessAfterDays: 30,
        glacierAfterDays: 180,
        glacierStorageClass: 'DEEP_ARCHIVE',
        expireAfterDays: 730,
        requestsExpireAfterDays: 7,
      },
    });
    const rules = rulesOf(imagesBucket(template));
    expect(rules).toContainEqual({
      Id: 'CleanUpRequests',
      Prefix: 'requests/',
      ExpirationInDays: 7,
      Status: 'Enabled',
    });
    expect(rules).toContainEqual({
      Id: 'Generations',
      Prefix: 'generations/',
      Transitions: [
        { StorageClass: 'STANDARD_IA', TransitionInDays: 30 },
        { StorageClass: 'DEEP_ARCHIVE', TransitionInDays: 180 },
      ],
      ExpirationInDays: 730,
      Status: 'Enabled',
    });
  });

  it('moves images to Glacier Instant Retrieval by default, so the API’s links keep working', () => {
    const { template } = synthesize({ bucket: { glacierAfterDays: 90 } });
    expect(rulesOf(imagesBucket(template))).toContainEqual(
      expect.objectContaining({ Transitions: [{ StorageClass: 'GLACIER_IR', TransitionInDays: 90 }] }),
    );
  });

  it('writes server access logs to a private, TLS-only bucket that only S3 logging may write to', () => {
    const { template } = synthesize({ bucket: { accessLogs: true, accessLogsExpirationDays: 90 } });
    const logsId = Object.keys(template.findResources('AWS::S3::Bucket')).find((id) =>
      id.startsWith('StorageAccessLogs'),
    );
    expect(imagesBucket(template).Properties.LoggingConfiguration).toEqual({
      DestinationBucketName: { Ref: logsId },
      LogFilePrefix: 'images/',
    });
    template.hasResource('AWS::S3::Bucket', {
      Properties: {
        PublicAccessBlockConfiguration: Match.objectLike({
          BlockPublicAcls: true,
          RestrictPublicBuckets: true,
        }),
        BucketEncryption: {
          ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
        },
        LifecycleConfiguration: { Rules: [{ Id: 'Expire', ExpirationInDays: 90, Status: 'Enabled' }] },
      },
      DeletionPolicy: 'Retain',
    });
    const policy = Object.values(template.findResources('AWS::S3::BucketPolicy')).find(
      (p) => p.Properties.Bucket.Ref === logsId,
    );
    expect(policy?.Properties.PolicyDocument.Statement).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        expect.objectContaining({
          Effect: 'Allow',
          Principal: { Service: 'logging.s3.amazonaws.com' },
          Action: 's3:PutObject',
          Condition: expect.objectContaining({ ArnLike: { 'aws:SourceArn': expect.anything() } }),
        }),
      ]),
    );
  });

  it('is deleted with the stack when retainOnDelete is off', () => {
    const { template } = synthesize({ bucket: { retainOnDelete: false } });
    expect(imagesBucket(template).DeletionPolicy).toBe('Delete');
  });

  it('is emptied before deletion when retainOnDelete is off, and so is the access-log bucket', () => {
    const { template } = synthesize({ bucket: { retainOnDelete: false, accessLogs: true } });
    const emptied = Object.values(template.findResources('Custom::S3AutoDeleteObjects')).map(
      (resource) => resource.Properties.BucketName.Ref as string,
    );
    const buckets = Object.keys(template.findResources('AWS::S3::Bucket'));
    expect(buckets).toHaveLength(2);
    expect(emptied.sort()).toEqual(buckets.sort());
  });

  it('is never emptied when retained, access logs included', () => {
    const { template } = synthesize({ bucket: { accessLogs: true } });
    template.resourceCountIs('Custom::S3AutoDeleteObjects', 0);
  });
});

describe('bucket configuration errors name the field', () => {
  it.each([
    [{ encryption: 'aes' }, /generation\.bucket\.encryption/],
    [{ infrequentAccessAfterDays: 10 }, /generation\.bucket\.infrequentAccessAfterDays: must be at least 30/],
    [
      { infrequentAccessAfterDays: 60, glacierAfterDays: 60 },
      /generation\.bucket\.glacierAfterDays: must be greater than infrequentAccessAfterDays/,
    ],
    [
      { glacierAfterDays: 90, expireAfterDays: 30 },
      /generation\.bucket\.expireAfterDays: must be greater than/,
    ],
    [{ requestsExpireAfterDays: 0 }, /generation\.bucket\.requestsExpireAfterDays/],
    [{ versioned: 'yes' }, /generation\.bucket\.versioned/],
    [{ accesLogs: true }, /generation\.bucket/],
  ])('%j', (bucket, message) => {
    expect(() => parseStackConfig({ bucket })).toThrow(message);
  });
});

const { template } = synthesize();
const resources = (type: string): Array<[string, Json]> => Object.entries(template.findResources(type));

function logGroupOf(id: string): Json {
  const group = template.findResources('AWS::Logs::LogGroup')[id];
  if (!group) throw new Error(`no log group ${id}`);
  return group;
}

describe('workflow logs', () => {
  it('go to CloudWatch at ERROR level without execution data by default (prompts can be sensitive)', () => {
    const [, machine] = resources('AWS::StepFunctions::StateMachine')[0]!;
    const config = machine.Properties.LoggingConfiguration;
    expect(config).toMatchObject({ Level: 'ERROR', IncludeExecutionData: false });
    const groupId = config.Destinations[0].CloudWatchLogsLogGroup.LogGroupArn['Fn::GetAtt'][0];
    expect(logGroupOf(groupId).Properties).toMatchObject({
      LogGroupName: '/aws/vendedlogs/states/Sd35Generation-generation',
      RetentionInDays: 30,
    });
  });

  it('take the configured level and execution data, or are off', () => {
    const all = synthesize({ workflowLogging: { level: 'ALL', includeExecutionData: true } }).template;
    all.hasResourceProperties('AWS::StepFunctions::StateMachine', {
      LoggingConfiguration: { Level: 'ALL', IncludeExecutionData: true },
    });
    const off = synthesize({ workflowLogging: { level: 'OFF' } }).template;
    const [, machine] = Object.entries(off.findResources('AWS::StepFunctions::StateMachine'))[0]!;
    expect(machine.Properties.LoggingConfiguration).toBeUndefined();
  });
});

describe('function logs', () => {
  it('each go to a log group of their own with the configured retention, as structured JSON at INFO', () => {
    for (const prefix of FUNCTION_PREFIXES) {
      const fn = template.findResources('AWS::Lambda::Function')[functionId(template, prefix)]!;
      const groupId = fn.Properties.LoggingConfig.LogGroup.Ref;
      expect(groupId).toMatch(new RegExp(`^${prefix}Logs`));
      expect(logGroupOf(groupId).Properties.RetentionInDays).toBe(30);
      expect(fn.Properties.Environment.Variables).toMatchObject({
        POWERTOOLS_LOG_LEVEL: 'INFO',
        POWERTOOLS_METRICS_NAMESPACE: 'Sd35Generation',
      });
    }
  });

  it('follow the configured retention, log level and metrics namespace', () => {
    const custom = synthesize({
      logRetentionDays: 90,
      logLevel: 'DEBUG',
      metricsNamespace: 'Sd35/Staging',
    }).template;
    const groups = Object.values(custom.findResources('AWS::Logs::LogGroup'));
    expect(groups.map((group) => group.Properties.RetentionInDays)).toEqual(groups.map(() => 90));
    const fn = custom.findResources('AWS::Lambda::Function')[functionId(custom, 'FunctionsPoll')]!;
    expect(fn.Properties.Environment.Variables).toMatchObject({
      POWERTOOLS_LOG_LEVEL: 'DEBUG',
      POWERTOOLS_METRICS_NAMESPACE: 'Sd35/Staging',
    });
  });
});

describe('API access logs', () => {
  it('write one JSON line per request to a log group with retention: who, route, status, latency; no body', () => {
    const [, stage] = resources('AWS::ApiGatewayV2::Stage')[0]!;
    expect(stage.Properties.StageName).toBe('$default');
    const settings = stage.Properties.AccessLogSettings;
    expect(logGroupOf(settings.DestinationArn['Fn::GetAtt'][0]).Properties.RetentionInDays).toBe(30);
    const format = JSON.parse(settings.Format) as Record<string, string>;
    expect(format).toMatchObject({
      requestId: '$context.requestId',
      sourceIp: '$context.identity.sourceIp',
      caller: '$context.identity.userArn',
      routeKey: '$context.routeKey',
      status: '$context.status',
    });
    expect(Object.values(format).some((variable) => /body|querystring|header/i.test(variable))).toBe(false);
  });
});

describe('alarms', () => {
  const alarms = resources('AWS::CloudWatch::Alarm').map(([, alarm]) => alarm.Properties);
  const topicId = resources('AWS::SNS::Topic')[0]![0];
  const byMetric = (name: string) => alarms.find((alarm) => alarm.MetricName === name);

  it('fire on failed, timed-out and throttled executions', () => {
    expect(byMetric('ExecutionsFailed')).toMatchObject({
      Namespace: 'AWS/States',
      Threshold: 1,
      Period: 300,
    });
    expect(byMetric('ExecutionsTimedOut')).toMatchObject({ Namespace: 'AWS/States', Threshold: 1 });
    expect(byMetric('ExecutionThrottled')).toMatchObject({ Namespace: 'AWS/States', Threshold: 1 });
  });

  it('fire on Lambda throttles of any function, and on Persist errors', () => {
    const throttles = alarms.find((alarm) =>
      alarm.Metrics?.some((m: Json) => m.MetricStat?.Metric.MetricName === 'Throttles'),
    );
    const counted = throttles.Metrics.filter((m: Json) => m.MetricStat).map(
      (m: Json) => m.MetricStat.Metric.Dimensions[0].Value.Ref,
    );
    expect(counted.map((id: string) => id.replace(/[A-F0-9]{8}$/, '')).sort()).toEqual(
      [...FUNCTION_PREFIXES].sort(),
    );
    expect(throttles.Metrics.find((m: Json) => m.Expression).Expression).toContain('FILL(');
    expect(byMetric('Errors')).toMatchObject({
      Namespace: 'AWS/Lambda',
      Dimensions: [{ Name: 'FunctionName', Value: { Ref: functionId(template, 'FunctionsPersist') } }],
    });
  });

  it('fire on any message in any dead-letter queue (deliveries in, announcements out), pointing to the runbook', () => {
    const queues = resources('AWS::SQS::Queue');
    expect(queues).toHaveLength(2);
    for (const [queueId] of queues) {
      const deadLetters = alarms.find(
        (alarm) =>
          alarm.MetricName === 'ApproximateNumberOfMessagesVisible' &&
          alarm.Dimensions[0].Value['Fn::GetAtt'][0] === queueId,
      );
      expect(deadLetters, queueId).toMatchObject({
        Namespace: 'AWS/SQS',
        Statistic: 'Maximum',
        Threshold: 1,
        Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [queueId, 'QueueName'] } }],
      });
      expect(deadLetters.AlarmDescription).toContain('Runbook: docs/events.md');
    }
    const announcements = alarms.find((alarm) =>
      String(alarm.AlarmDescription).includes('dead-letter queue Announcements'),
    );
    expect(announcements.AlarmDescription).toContain('PutEvents entry');
  });

  it('fire on reconciler and dispatcher errors', () => {
    const errorsOf = (prefix: string) =>
      alarms.find(
        (alarm) =>
          alarm.MetricName === 'Errors' && alarm.Dimensions[0].Value.Ref === functionId(template, prefix),
      );
    for (const prefix of ['ReconcilerHandler', 'FunctionsDispatcher']) {
      expect(errorsOf(prefix), prefix).toMatchObject({ Namespace: 'AWS/Lambda', Threshold: 1, Period: 300 });
    }
    expect(errorsOf('ReconcilerHandler').AlarmDescription).toContain('dead-letter queue Events');
  });

  it('fire when the oldest generation waiting for admission is an hour past its estimated start, configurable', () => {
    expect(byMetric(METRIC.oldestWaitingSeconds)).toMatchObject({
      Namespace: 'Sd35Generation',
      Dimensions: [{ Name: 'service', Value: 'dispatch' }],
      Statistic: 'Maximum',
      Threshold: 3600,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
    });
    const custom = synthesize({ alarms: { queueOverdueSeconds: 7200 } }).template;
    custom.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: METRIC.oldestWaitingSeconds,
      Threshold: 7200,
    });
    expect(() => parseStackConfig({ alarms: { queueOverdueSeconds: 10 } })).toThrow(
      /generation\.alarms\.queueOverdueSeconds: must be at least 60/,
    );
  });

  it('all notify the SNS topic, when raised and when cleared, and treat no data as fine', () => {
    expect(alarms).toHaveLength(10);
    for (const alarm of alarms) {
      expect(alarm.AlarmActions).toEqual([{ Ref: topicId }]);
      expect(alarm.OKActions).toEqual([{ Ref: topicId }]);
      expect(alarm.TreatMissingData).toBe('notBreaching');
      expect(alarm.AlarmDescription.length).toBeGreaterThan(40);
    }
  });

  it('take their failed-executions threshold and an email subscriber from the configuration', () => {
    const custom = synthesize({ alarms: { email: 'oncall@example.com', failedExecutions: 5 } }).template;
    custom.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: 'ExecutionsFailed', Threshold: 5 });
    custom.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: 'oncall@example.com',
    });
    template.resourceCountIs('AWS::SNS::Subscription', 0);
  });

  it('go to a topic encrypted with a rotated key CloudWatch may use, over TLS only', () => {
    const [, topic] = resources('AWS::SNS::Topic')[0]!;
    const keyId = topic.Properties.KmsMasterKeyId['Fn::GetAtt'][0];
    const key = template.findResources('AWS::KMS::Key')[keyId]!;
    expect(key.Properties.EnableKeyRotation).toBe(true);
    expect(key.Properties.KeyPolicy.Statement).toContainEqual(
      expect.objectContaining({ Principal: { Service: 'cloudwatch.amazonaws.com' } }),
    );
    const [, policy] = resources('AWS::SNS::TopicPolicy')[0]!;
    expect(policy.Properties.PolicyDocument.Statement).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        expect.objectContaining({
          Effect: 'Allow',
          Principal: { Service: 'cloudwatch.amazonaws.com' },
          Action: 'sns:Publish',
        }),
      ]),
    );
  });
});

describe('dashboard', () => {
  it('shows the flow: executions, outcomes, request-to-images time, DashScope calls, storage, functions', () => {
    const [, dashboard] = resources('AWS::CloudWatch::Dashboard')[0]!;
    expect(dashboard.Properties.DashboardName).toBe('Sd35Generation-generation');
    const body = JSON.stringify(dashboard.Properties.DashboardBody);
    for (const metric of [
      ...Object.values(METRIC),
      'ExecutionsStarted',
      'ExecutionsSucceeded',
      'ExecutionsFailed',
      'ExecutionsTimedOut',
    ]) {
      expect(body, metric).toContain(metric);
    }
    expect(body).toContain('Sd35Generation');
  });
});

describe('monitoring: "lean"', () => {
  const lean = synthesize({ monitoring: 'lean' }).template;
  const leanResources = (type: string) => Object.entries(lean.findResources(type));

  it('has no dashboard, no dashboard output and no KMS key', () => {
    lean.resourceCountIs('AWS::CloudWatch::Dashboard', 0);
    lean.resourceCountIs('AWS::KMS::Key', 0);
    expect(Object.keys(lean.toJSON().Outputs)).not.toContain('DashboardName');
  });

  it('turns custom metrics off in every function', () => {
    for (const prefix of FUNCTION_PREFIXES) {
      const fn = lean.findResources('AWS::Lambda::Function')[functionId(lean, prefix)];
      expect(fn?.Properties.Environment.Variables.POWERTOOLS_METRICS_DISABLED, prefix).toBe('true');
    }
  });

  it('keeps every alarm but the queue’s (its metric is a custom one), each reading one metric, on a TLS-only topic', () => {
    const names = (t: typeof template) =>
      Object.keys(t.findResources('AWS::CloudWatch::Alarm')).map((id) => id.replace(/[0-9A-F]{8}$/, ''));
    expect(names(lean).sort()).toEqual(
      names(template)
        .filter((name) => name !== 'MonitoringQueueOverdue')
        .sort(),
    );
    for (const [id, alarm] of leanResources('AWS::CloudWatch::Alarm')) {
      expect(alarm.Properties.Metrics, id).toBeUndefined();
      expect(alarm.Properties.AlarmActions, id).toHaveLength(1);
    }
    const [, policy] = leanResources('AWS::SNS::TopicPolicy')[0]!;
    expect(policy.Properties.PolicyDocument.Statement).toContainEqual(
      expect.objectContaining({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
    );
  });

  it('reads Lambda throttles from the account-wide metric', () => {
    const [, throttles] = leanResources('AWS::CloudWatch::Alarm').find(([id]) =>
      id.includes('LambdaThrottles'),
    )!;
    expect(throttles.Properties).toMatchObject({ Namespace: 'AWS/Lambda', MetricName: 'Throttles' });
    expect(throttles.Properties.Dimensions).toBeUndefined();
  });
});

describe('outputs', () => {
  it('name the API URL, bucket, state machine, alarm topic and dashboard', () => {
    expect(Object.keys(template.toJSON().Outputs).sort()).toEqual([
      'AlarmTopicArn',
      'ApiUrl',
      'BucketName',
      'DashboardName',
      'GenerationsTableName',
      'StateMachineArn',
      'WebhookSecretArn',
    ]);
  });
});
