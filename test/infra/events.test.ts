import { Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { DEAD_LETTER_QUEUE_VARIABLE } from '../../functions/shared/events.js';
import { scheduledInputSchema } from '../../functions/trigger/request-event.js';
import { createApp } from '../../infra/app.js';
import { renderedInput } from './template.js';

type Json = Record<string, any>;

function synth(generation: Record<string, unknown> = {}): Template {
  const { stack } = createApp({ context: { 'aws:cdk:bundling-stacks': [], generation } });
  return Template.fromStack(stack);
}

function rules(template: Template): Json[] {
  return Object.values(template.findResources('AWS::Events::Rule')).map((rule) => rule.Properties);
}

function statementsOf(template: Template, idPrefix: string): Json[] {
  const fn = Object.entries(template.findResources('AWS::Lambda::Function')).find(([id]) =>
    id.startsWith(idPrefix),
  );
  if (!fn) throw new Error(`no function ${idPrefix}`);
  const roleId = fn[1].Properties.Role['Fn::GetAtt'][0];
  return Object.values(template.findResources('AWS::IAM::Policy'))
    .filter((policy) => policy.Properties.Roles.some((role: Json) => role.Ref === roleId))
    .flatMap((policy) => policy.Properties.PolicyDocument.Statement);
}

const actions = (statement: Json): string[] => [statement.Action].flat();

describe('events in', () => {
  const template = synth();

  it('sends "Generation Requested" events, whole, to the trigger (which names each after its id)', () => {
    const rule = rules(template).find((r) =>
      r.EventPattern?.['detail-type']?.includes('Generation Requested'),
    );
    expect(rule?.EventBusName).toBe('default');
    expect(rule?.Targets).toHaveLength(1);
    expect(rule?.Targets[0].Arn).toEqual({ 'Fn::GetAtt': [expect.stringMatching(/^EventsTrigger/), 'Arn'] });
    expect(rule?.Targets[0]).not.toHaveProperty('InputPath');
    expect(rule?.Targets[0]).not.toHaveProperty('Input');
  });

  it('starts generations only for "Generation Requested" events from the default request source', () => {
    const rule = rules(template).find((r) =>
      r.EventPattern?.['detail-type']?.includes('Generation Requested'),
    );
    expect(rule?.EventPattern).toEqual({
      source: ['sd35.requests'],
      'detail-type': ['Generation Requested'],
    });
  });

  it('matches the configured request sources, and refuses an AWS-reserved one naming the field', () => {
    const custom = synth({ requestEventSources: ['com.example.orders', 'com.example.studio'] });
    const rule = rules(custom).find((r) => r.EventPattern?.['detail-type']?.includes('Generation Requested'));
    expect(rule?.EventPattern.source).toEqual(['com.example.orders', 'com.example.studio']);
    expect(() => synth({ requestEventSources: ['aws.s3'] })).toThrow(
      /generation\.requestEventSources\.0: must not start with "aws\."/,
    );
  });

  it('uses the configured bus', () => {
    const custom = synth({ eventBusName: 'images' });
    const rule = rules(custom).find((r) => r.EventPattern?.['detail-type']?.includes('Generation Requested'));
    expect(rule?.EventBusName).toBe('images');
  });

  it('sends S3 "Object Created" events for requests/*.json and requests/*.jsonl of this bucket to the trigger', () => {
    // Set on the bucket itself: no custom-resource Lambda to manage the notification.
    template.hasResourceProperties('AWS::S3::Bucket', {
      NotificationConfiguration: { EventBridgeConfiguration: { EventBridgeEnabled: true } },
    });
    template.resourceCountIs('Custom::S3BucketNotifications', 0);
    const rule = rules(template).find((r) => r.EventPattern?.source?.includes('aws.s3'));
    expect(rule?.EventPattern).toEqual({
      source: ['aws.s3'],
      'detail-type': ['Object Created'],
      detail: {
        bucket: { name: [{ Ref: expect.stringMatching(/^StorageImages/) }] },
        object: { key: [{ wildcard: 'requests/*.json' }, { wildcard: 'requests/*.jsonl' }] },
      },
    });
    expect(rule?.Targets[0].Arn['Fn::GetAtt'][0]).toMatch(/^EventsTrigger/);
  });

  it('lets the trigger read requests/, write only its reports, and start this state machine', () => {
    const statements = statementsOf(template, 'EventsTrigger');
    const text = JSON.stringify(statements);
    expect(text).toContain('requests/*');
    const puts = statements.filter((s) => actions(s).some((a) => a.startsWith('s3:Put')));
    expect(JSON.stringify(puts.map((s) => s.Resource))).toContain('requests/*.result');
    expect(JSON.stringify(puts.map((s) => s.Resource))).not.toContain('generations');
    const start = statements.find((s) => actions(s).includes('states:StartExecution'));
    expect(start?.Resource).toEqual({ Ref: expect.stringMatching(/^WorkflowStateMachine/) });
  });

  it('lets the trigger read and write the index (a file’s batch and lines) and describe this state machine’s executions, nothing more', () => {
    const statements = statementsOf(template, 'EventsTrigger');
    const dynamo = statements.flatMap(actions).filter((a) => a.startsWith('dynamodb:'));
    expect(dynamo.sort()).toEqual([
      'dynamodb:BatchGetItem',
      'dynamodb:GetItem',
      'dynamodb:Query',
      'dynamodb:UpdateItem',
    ]);
    const describe = statements.find((s) => actions(s).includes('states:DescribeExecution'));
    expect(JSON.stringify(describe?.Resource)).toContain(':execution:');
    expect(actions(describe ?? {})).toEqual(['states:DescribeExecution']);
  });

  it('adds a scheduled generation from configuration, its request validated at synth', () => {
    const scheduled = synth({
      schedules: [{ name: 'daily-eagle', schedule: 'rate(1 day)', request: { prompt: 'an eagle', n: 2 } }],
    });
    const rule = rules(scheduled).find((r) => r.ScheduleExpression === 'rate(1 day)');
    const input = renderedInput(rule?.Targets[0], { id: 'e-1', time: '2026-03-01T00:00:00Z' });
    expect(scheduledInputSchema.parse(input)).toMatchObject({
      id: 'e-1',
      detail: { schedule: 'daily-eagle', request: { prompt: 'an eagle', n: 2, size: '1024*1024' } },
    });
    expect(rule?.Targets[0].Arn).toEqual({ 'Fn::GetAtt': [expect.stringMatching(/^EventsTrigger/), 'Arn'] });
    expect(() =>
      synth({ schedules: [{ name: 'bad', schedule: 'rate(1 day)', request: { prompt: 'x', n: 9 } }] }),
    ).toThrow(/generation\.schedules\.0\.request\.n/);
  });
});

describe('nothing that comes in is dropped silently', () => {
  const scheduled = synth({
    schedules: [{ name: 'nightly', schedule: 'rate(1 day)', request: { prompt: 'an eagle' } }],
  });
  const queues = Object.entries(scheduled.findResources('AWS::SQS::Queue'));
  const [queueId] = queues.find(([id]) => id.startsWith('EventsDeadLetters')) ?? [];
  const policyOf = (id: string | undefined) =>
    Object.values(scheduled.findResources('AWS::SQS::QueuePolicy')).find((policy) =>
      policy.Properties.Queues.some((queue: Json) => queue.Ref === id),
    );

  it('keeps dead letters in encrypted queues for 14 days, over TLS only: deliveries in, and announcements out', () => {
    expect(queues.map(([id]) => id.replace(/[0-9A-F]{8}$/, '')).sort()).toEqual([
      'AnnouncementDeadLettersQueue',
      'EventsDeadLettersQueue',
    ]);
    for (const [id, queue] of queues) {
      expect(queue.Properties, id).toMatchObject({
        SqsManagedSseEnabled: true,
        MessageRetentionPeriod: 1_209_600,
      });
      expect(policyOf(id)?.Properties.PolicyDocument.Statement).toContainEqual(
        expect.objectContaining({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
      );
    }
  });

  it('gives every rule target (request events, request files, schedules, status changes, the dispatcher’s sweep) the dead-letter queue and a retry policy', () => {
    const all = rules(scheduled);
    expect(all.length).toBe(5);
    for (const rule of all) {
      for (const target of rule.Targets as Json[]) {
        expect(target.DeadLetterConfig, rule.Description).toEqual({
          Arn: { 'Fn::GetAtt': [queueId, 'Arn'] },
        });
        expect(target.RetryPolicy, rule.Description).toEqual({
          MaximumRetryAttempts: 185,
          MaximumEventAgeInSeconds: 86_400,
        });
      }
    }
  });

  it('lets EventBridge write to the queue only for this stack’s rules', () => {
    const policy = policyOf(queueId);
    const sends = ((policy?.Properties.PolicyDocument.Statement ?? []) as Json[]).filter((s) =>
      actions(s).includes('sqs:SendMessage'),
    );
    expect(sends.length).toBe(5);
    for (const statement of sends) {
      expect(statement.Principal).toEqual({ Service: 'events.amazonaws.com' });
      expect(statement.Condition.ArnEquals['aws:SourceArn']['Fn::GetAtt'][0]).toMatch(
        /^(Events|Reconciler|DispatcherSweep)/,
      );
    }
  });

  it.each([
    ['a request-file event the trigger', 'EventsTrigger'],
    ['a status change the reconciler', 'ReconcilerHandler'],
  ])('sends %s failed on, after Lambda’s retries, to the queue', (_what, prefix) => {
    const configs = Object.values(scheduled.findResources('AWS::Lambda::EventInvokeConfig'));
    expect(configs).toHaveLength(2);
    const config = configs.find((each) => each.Properties.FunctionName.Ref.startsWith(prefix));
    expect(config?.Properties).toMatchObject({
      MaximumRetryAttempts: 2,
      DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [queueId, 'Arn'] } } },
    });
    const sends = statementsOf(scheduled, prefix).filter((s) => actions(s).includes('sqs:SendMessage'));
    expect(sends.map((s) => s.Resource)).toContainEqual({ 'Fn::GetAtt': [queueId, 'Arn'] });
  });
});

describe('events out', () => {
  const template = synth();
  const [announcementsId] =
    Object.entries(template.findResources('AWS::SQS::Queue')).find(([id]) =>
      id.startsWith('AnnouncementDeadLetters'),
    ) ?? [];

  it.each([
    ['the notifier', 'FunctionsNotify'],
    ['the reconciler', 'ReconcilerHandler'],
  ])(
    'lets %s put an event EventBridge refused in the announcements queue, and only send there',
    (_who, prefix) => {
      const sqs = statementsOf(template, prefix).filter((s) => actions(s).some((a) => a.startsWith('sqs:')));
      const toAnnouncements = sqs.filter((s) => s.Resource['Fn::GetAtt']?.[0] === announcementsId);
      expect(toAnnouncements).toHaveLength(1);
      expect(actions(toAnnouncements[0]!)).toEqual(['sqs:SendMessage']);
      const fn = Object.entries(template.findResources('AWS::Lambda::Function')).find(([id]) =>
        id.startsWith(prefix),
      );
      expect(fn?.[1].Properties.Environment.Variables[DEAD_LETTER_QUEUE_VARIABLE]).toEqual({
        Ref: announcementsId,
      });
    },
  );

  it('lets the notifier publish to the bus, read the webhook secret, and write only delivery records', () => {
    const statements = statementsOf(template, 'FunctionsNotify');
    expect(statements.some((s) => actions(s).includes('events:PutEvents'))).toBe(true);
    expect(statements.some((s) => actions(s).includes('secretsmanager:GetSecretValue'))).toBe(true);
    const s3 = statements.filter((s) => actions(s).some((a) => a.startsWith('s3:')));
    expect(s3.every((s) => actions(s).every((a) => a.startsWith('s3:Put') || a.startsWith('s3:Abort')))).toBe(
      true,
    );
    expect(JSON.stringify(s3.map((s) => s.Resource))).toContain('generations/*/webhook.json');
  });

  it('creates the webhook signing secret when webhooks are on, and passes its name, never its value', () => {
    template.resourceCountIs('AWS::SecretsManager::Secret', 1);
    const fn = Object.entries(template.findResources('AWS::Lambda::Function')).find(([id]) =>
      id.startsWith('FunctionsNotify'),
    );
    const variables = fn?.[1].Properties.Environment.Variables;
    expect(variables.WEBHOOK_SECRET_ID).toBeDefined();
    expect(variables.WEBHOOK_SECRET).toBeUndefined();
  });

  it('creates no secret and delivers no webhooks when webhooks are off', () => {
    const off = synth({ webhooks: false });
    off.resourceCountIs('AWS::SecretsManager::Secret', 0);
    const fn = Object.entries(off.findResources('AWS::Lambda::Function')).find(([id]) =>
      id.startsWith('FunctionsNotify'),
    );
    expect(fn?.[1].Properties.Environment.Variables.WEBHOOK_SECRET_ID).toBeUndefined();
  });
});
