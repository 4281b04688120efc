import path from 'node:path';
import { Duration } from 'aws-cdk-lib';
import { EventField, type IEventBus, Match, Rule, RuleTargetInput, Schedule } from 'aws-cdk-lib/aws-events';
import { LambdaFunction } from 'aws-cdk-lib/aws-events-targets';
import type { StateMachine } from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { DETAIL_TYPE, SCHEDULED_DETAIL_TYPE } from '../../functions/shared/events.js';
import { REQUEST_OBJECT_PATTERNS } from '../../functions/shared/request-keys.js';
import { triggerSpec } from '../../functions/trigger/spec.js';
import type { StackConfig } from '../config.js';
import { DeadLetterQueue } from './dead-letter-queue.js';
import { grantOnExecutions } from './execution-grants.js';
import { GenerationFunction } from './generation-function.js';
import type { GenerationsTable } from './generations-table.js';
import type { Storage } from './storage.js';

export interface EventsProps {
  /**
   * The stack's configuration (infra/config.ts): here the sources whose requests are taken, the
   * schedules, the bus's name, the trigger's reserved concurrency and the default model.
   */
  readonly config: StackConfig;
  /** The generation workflow the trigger starts executions of. */
  readonly stateMachine: StateMachine;
  /**
   * The images bucket: a request file stored under its `requests/` starts generations, and the
   * trigger writes each file's report beside it (`requests/<file>.result`).
   */
  readonly storage: Storage;
  /** The generations index, where the trigger records each request before starting its execution. */
  readonly index: GenerationsTable;
  /**
   * The bus (`config.eventBusName`) whose "Generation Requested" events start generations, and
   * where the trigger publishes "Generation Request Rejected" for a request it refuses.
   */
  readonly eventBus: IEventBus;
}

/**
 * Ways in without the API, all through the trigger Lambda, which validates each request, records
 * it in the generations index and starts its execution under a deterministic name (so a repeated
 * delivery starts nothing twice):
 * - "Generation Requested" events from the configured sources on the configured bus (detail =
 *   request; named after the event id, `evt-…`);
 * - request files dropped under `requests/` (`*.json`, `*.jsonl`), through S3's EventBridge
 *   notifications (always on the default bus): one execution per valid line (`req-…`);
 * - optional schedules, each firing a fixed request (named after the schedule and the firing, `sch-…`).
 *
 * Nothing that comes in is dropped silently: every rule's target retries, then leaves the event in
 * {@link deadLetters}; so does the trigger after Lambda's retries of a failed invocation.
 */
export class Events extends Construct {
  readonly trigger: GenerationFunction;
  /** Events no target could take, and request-file events the trigger failed on; alarmed. */
  readonly deadLetters: DeadLetterQueue;

  constructor(scope: Construct, id: string, props: EventsProps) {
    super(scope, id);
    const { config, stateMachine, storage } = props;
    const bucket = storage.bucket;

    this.deadLetters = new DeadLetterQueue(this, 'DeadLetters', {
      holds:
        'events the Generation Requested, request-file and schedule rules could not deliver, and request files the trigger failed on after its retries',
    });
    const { deadLetters } = this;

    this.trigger = new GenerationFunction(this, 'Trigger', {
      config,
      reservedConcurrentExecutions: config.reservedConcurrency.trigger,
      entry: path.join(import.meta.dirname, '..', '..', 'functions', 'trigger', 'handler.ts'),
      timeout: Duration.minutes(5),
      environment: triggerSpec.encode({
        STATE_MACHINE_ARN: stateMachine.stateMachineArn,
        GENERATIONS_TABLE: props.index.table.tableName,
        EVENT_BUS_NAME: config.eventBusName,
        DEFAULT_MODEL: config.defaultModel,
      }),
    });
    stateMachine.grantStartExecution(this.trigger);
    // `read` and DescribeExecution: a line whose record exists may have started already (a
    // re-delivered file); only then is its execution described. A file is a batch: the trigger
    // creates it (an UpdateItem) and reads its status (its counts are Queries of `byBatch`).
    props.index.grant(this.trigger, 'read', 'write');
    grantOnExecutions(
      this,
      this.trigger.role,
      stateMachine,
      ['states:DescribeExecution'],
      'A request-file line names its execution (a hash of the object version and the line), learned at run time: the trigger describes one only when its record already exists, to report a re-delivered line as a duplicate; the grant is all executions of this one state machine',
    );
    deadLetters.catchFailuresOf(this.trigger);
    storage.grantObjects(this.trigger, {
      keys: 'requests/*',
      // The event names the object version when the bucket is versioned.
      actions: ['s3:GetObject', 's3:GetObjectVersion'],
      why: 'The trigger reads whichever request file was dropped under requests/ (its key and version come with the S3 event). Read only',
    });
    // Only the per-file report, `requests/<file>.result`, which the rule below does not match.
    storage.grantObjects(this.trigger, {
      keys: 'requests/*.result',
      actions: ['s3:PutObject'],
      why: 'The trigger writes one report next to each request file, requests/<file>.result, a suffix the request-file rule never matches',
    });
    storage.grantObjects(this.trigger, {
      keys: 'batches/*',
      actions: ['s3:GetObject', 's3:PutObject'],
      why: 'A request file is a batch: the trigger keeps its rejected lines at batches/{id}/rejected.json and reads its results file to bring the report up to its end; the batch id is derived from the file at run time',
    });
    props.eventBus.grantPutEventsTo(this.trigger);

    // Events go through the trigger, which names each generation after the event's id: a repeated
    // delivery (EventBridge is at least once) starts nothing twice, and the index knows the source.
    new Rule(this, 'GenerationRequested', {
      description: 'Starts a generation for every "Generation Requested" event; its detail is the request',
      eventBus: props.eventBus,
      eventPattern: { source: [...config.requestEventSources], detailType: [DETAIL_TYPE.requested] },
      targets: [new LambdaFunction(this.trigger, deadLetters.targetProps())],
    });

    new Rule(this, 'RequestFileCreated', {
      description: 'Request files under requests/ (*.json, *.jsonl) → the trigger Lambda',
      eventPattern: {
        source: ['aws.s3'],
        detailType: ['Object Created'],
        detail: {
          bucket: { name: [bucket.bucketName] },
          object: { key: Match.anyOf(...REQUEST_OBJECT_PATTERNS.map((pattern) => Match.wildcard(pattern))) },
        },
      },
      targets: [new LambdaFunction(this.trigger, deadLetters.targetProps())],
    });

    for (const scheduled of config.schedules) {
      new Rule(this, `Schedule-${scheduled.name}`, {
        description: `Scheduled generation "${scheduled.name}"`,
        schedule: Schedule.expression(scheduled.schedule),
        // The rule's event id names the generation (`sch-…`): a repeated delivery starts it once.
        targets: [
          new LambdaFunction(this.trigger, {
            event: RuleTargetInput.fromObject({
              id: EventField.eventId,
              'detail-type': SCHEDULED_DETAIL_TYPE,
              time: EventField.time,
              detail: { schedule: scheduled.name, request: scheduled.request },
            }),
            ...deadLetters.targetProps(),
          }),
        ],
      });
    }
  }
}
