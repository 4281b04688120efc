import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import {
  Alarm,
  AlarmStatusWidget,
  ComparisonOperator,
  Dashboard,
  GraphWidget,
  type IMetric,
  MathExpression,
  Metric,
  TextWidget,
  TreatMissingData,
} from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import { PolicyStatement, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Key } from 'aws-cdk-lib/aws-kms';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { Topic } from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import type { StateMachine } from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import {
  METRIC,
  type MetricName,
  OUTCOME_DIMENSION,
  SERVICE,
  type Service,
} from '../../functions/shared/metrics.js';
import type { StackConfig } from '../config.js';
import { acknowledge } from '../nag.js';
import { DeadLetterQueue } from './dead-letter-queue.js';

export interface MonitoringProps {
  /**
   * The stack's configuration (infra/config.ts): here the alarms' thresholds and email, the
   * metrics namespace, and `monitoring` (`lean`: no dashboard, no key on the topic).
   */
  readonly config: StackConfig;
  /** The generation workflow, whose failed, timed-out and throttled executions are alarmed. */
  readonly stateMachine: StateMachine;
  /** Every function of the stack, by the name the dashboard shows. */
  readonly functions: Readonly<Record<string, IFunction>>;
  /** The function whose errors mean images may not have been stored. */
  readonly persist: IFunction;
  /**
   * Dead-letter queues by the name their alarm carries: any message in one is a failed delivery.
   * Every other {@link DeadLetterQueue} of the stack is alarmed too, under its own `alarmName`.
   * @default none by name: every {@link DeadLetterQueue} of the stack under its `alarmName`
   */
  readonly deadLetterQueues?: Readonly<Record<string, IQueue>>;
  /**
   * The reconciler, whose failures are alarmed.
   * @default `functions.reconcile`, and no alarm when there is none
   */
  readonly reconciler?: IFunction;
  /**
   * The admission dispatcher, whose failures are alarmed.
   * @default `functions.dispatch`, and no alarm when there is none
   */
  readonly dispatcher?: IFunction;
}

/** Where the alarm of a dead-letter queue sends whoever reads it. */
export const DEAD_LETTER_RUNBOOK = 'docs/events.md, "Runbook: dead letters"';

const PERIOD = Duration.minutes(5);

/**
 * Alarms that wake someone, on a TLS-only SNS topic (with an optional email subscription), and a
 * dashboard of the flow:
 * - failed executions (at or above the configured count in 5 minutes), timed-out executions,
 *   throttled executions, throttled Lambda invocations, Persist, reconciler and dispatcher errors,
 *   the oldest generation waiting for admission past its estimated start (`full` only: a custom
 *   metric), and any message in any dead-letter queue of the stack;
 * - the dashboard: executions, outcomes by type, seconds from request to images, DashScope
 *   submits, polls and 429s, bytes and images stored, and each function's errors, throttles and
 *   duration.
 *
 * `monitoring: "lean"` keeps every alarm but spends nothing fixed it can avoid: no dashboard, no
 * customer-managed key on the topic, and Lambda throttles read from the account's one aggregate
 * metric instead of one metric per function (docs/costs.md).
 */
export class Monitoring extends Construct {
  readonly topic: Topic;
  readonly alarms: readonly Alarm[];
  /** The dashboard; none in the `lean` configuration. */
  readonly dashboard?: Dashboard;

  constructor(scope: Construct, id: string, props: MonitoringProps) {
    super(scope, id);
    const { config, stateMachine } = props;
    const stack = Stack.of(this);

    const lean = config.monitoring === 'lean';
    this.topic = new Topic(this, 'AlarmTopic', {
      displayName: 'SD 3.5 generation alarms',
      masterKey: lean ? undefined : this.topicKey(),
      enforceSSL: true,
    });
    if (lean)
      acknowledge(
        this.topic,
        'AwsSolutions-SNS2',
        'monitoring "lean": CloudWatch alarms can publish to an encrypted topic only with a customer-managed key ($1 a month, half the lean budget), and an alarm notification carries only the alarm\'s name, state and reason, never a prompt, image or secret; delivery stays TLS-only (enforceSSL)',
      );
    // The topic policy CDK writes for enforceSSL replaces SNS's default one: allow the alarms back.
    this.topic.addToResourcePolicy(
      new PolicyStatement({
        sid: 'CloudWatchAlarmsOfThisAccount',
        principals: [new ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['sns:Publish'],
        resources: [this.topic.topicArn],
        conditions: {
          ArnLike: {
            'aws:SourceArn': `arn:${stack.partition}:cloudwatch:${stack.region}:${stack.account}:alarm:*`,
          },
          StringEquals: { 'aws:SourceAccount': stack.account },
        },
      }),
    );
    if (config.alarms.email) this.topic.addSubscription(new EmailSubscription(config.alarms.email));

    const functions = Object.entries(props.functions);
    const reconciler = props.reconciler ?? props.functions.reconcile;
    const dispatcher = props.dispatcher ?? props.functions.dispatch;
    // A function without invocations has no data point: FILL keeps it from blanking the sum.
    const sumOf = (label: string, metrics: Array<[string, IMetric]>) =>
      new MathExpression({
        label,
        expression: metrics.map(([name]) => `FILL(${name}, 0)`).join(' + '),
        usingMetrics: Object.fromEntries(metrics),
        period: PERIOD,
      });
    // An alarm pays per metric it reads: lean reads the account's aggregate (every function in
    // the region, this stack's and any other) rather than one metric per function.
    const lambdaThrottles = lean
      ? new Metric({
          namespace: 'AWS/Lambda',
          metricName: 'Throttles',
          statistic: 'Sum',
          period: PERIOD,
        })
      : sumOf(
          'Throttled invocations, all functions',
          functions.map(([, fn], index) => [
            `t${index}`,
            fn.metricThrottles({ period: PERIOD, statistic: 'Sum' }),
          ]),
        );

    const alarm = (name: string, description: string, metric: IMetric, threshold = 1) =>
      new Alarm(this, name, {
        alarmDescription: description,
        metric,
        threshold,
        evaluationPeriods: 1,
        comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: TreatMissingData.NOT_BREACHING,
      });
    this.alarms = [
      alarm(
        'ExecutionsFailed',
        `At least ${config.alarms.failedExecutions} generation(s) failed in 5 minutes. The dashboard's "Outcomes" shows which error types; the execution's error and cause say why.`,
        stateMachine.metricFailed({ period: PERIOD, statistic: 'Sum' }),
        config.alarms.failedExecutions,
      ),
      alarm(
        'ExecutionsTimedOut',
        'A generation ran past its execution timeout, which lies past the longest path of every retry (docs/decisions/0009-time-budget.md), without reaching Notify: a stuck service or a bug. Look at its last state in the execution history.',
        stateMachine.metricTimedOut({ period: PERIOD, statistic: 'Sum' }),
      ),
      alarm(
        'ExecutionsThrottled',
        'Step Functions throttled starting or running executions: the account is at a Step Functions quota.',
        stateMachine.metricThrottled({ period: PERIOD, statistic: 'Sum' }),
      ),
      alarm(
        'LambdaThrottles',
        lean
          ? 'A function of this account in this region was throttled by Lambda (account or function concurrency): if it is one of this stack, executions retry, but slow down. The Lambda console shows which function.'
          : 'A function was throttled by Lambda (account or function concurrency): executions retry, but slow down.',
        lambdaThrottles,
      ),
      alarm(
        'PersistErrors',
        'Persist failed (S3 unavailable, DashScope gone, or no image could be stored): the workflow retries transient errors; a generation whose images were not stored ends failed.',
        props.persist.metricErrors({ period: PERIOD, statistic: 'Sum' }),
      ),
      ...(reconciler
        ? [
            alarm(
              'ReconcilerErrors',
              'The reconciler failed on an execution status change (the generations index unreachable, DescribeExecution refused, or an announcement neither published nor dead-lettered: its log has the entry). Lambda retries twice, then the status change waits in dead-letter queue Events. Look at the reconciler log group.',
              reconciler.metricErrors({ period: PERIOD, statistic: 'Sum' }),
            ),
          ]
        : []),
      ...(dispatcher
        ? [
            alarm(
              'DispatcherErrors',
              'An admission dispatcher run failed (the generations table or Step Functions refused): the next kick or the one-minute sweep runs again, but while it keeps failing nothing is admitted. Look at the dispatcher log group.',
              dispatcher.metricErrors({ period: PERIOD, statistic: 'Sum' }),
            ),
          ]
        : []),
      // A custom metric: `lean` emits none (docs/operations.md).
      ...(lean
        ? []
        : [
            alarm(
              'QueueOverdue',
              `The oldest generation waiting for admission is ${config.alarms.queueOverdueSeconds} s or more past its estimated start: a slot's task ran far past its expected end (DashScope slow or stuck, or a lost release), or the dispatcher does not grant. docs/admission.md, "What goes wrong"; the dispatcher's log group.`,
              new Metric({
                namespace: config.metricsNamespace,
                metricName: METRIC.oldestWaitingSeconds,
                dimensionsMap: { service: SERVICE.dispatch },
                statistic: 'Maximum',
                period: PERIOD,
              }),
              config.alarms.queueOverdueSeconds,
            ),
          ]),
      ...Object.entries(this.deadLetterQueuesOf(props.deadLetterQueues ?? {})).map(
        ([name, { queue, holds }]) =>
          alarm(
            `DeadLetters${name}`,
            `A delivery failed after all its retries and waits in dead-letter queue ${name} (${holds}), kept 14 days. Runbook: ${DEAD_LETTER_RUNBOOK}.`,
            queue.metricApproximateNumberOfMessagesVisible({ period: PERIOD, statistic: 'Maximum' }),
          ),
      ),
    ];
    for (const each of this.alarms) {
      each.addAlarmAction(new SnsAction(this.topic));
      each.addOkAction(new SnsAction(this.topic));
    }

    if (!lean) this.dashboard = this.createDashboard(config, stateMachine, functions, sumOf);
  }

  /**
   * The queues given by name, then every other {@link DeadLetterQueue} of the stack under its
   * `alarmName`: a dead-letter queue nobody watches cannot be added by mistake.
   */
  private deadLetterQueuesOf(
    named: Readonly<Record<string, IQueue>>,
  ): Record<string, { queue: IQueue; holds: string }> {
    const constructs = Stack.of(this)
      .node.findAll()
      .filter((each): each is DeadLetterQueue => each instanceof DeadLetterQueue);
    const holdsOf = (queue: IQueue) =>
      constructs.find((each) => each.queue === queue)?.contents ??
      'deliveries that failed after their retries';
    const result: Record<string, { queue: IQueue; holds: string }> = {};
    for (const [name, queue] of Object.entries(named)) result[name] = { queue, holds: holdsOf(queue) };
    const listed = new Set(Object.values(named));
    for (const each of constructs) {
      if (listed.has(each.queue)) continue;
      if (result[each.alarmName]) throw new Error(`Two dead-letter queues would alarm as ${each.alarmName}`);
      result[each.alarmName] = { queue: each.queue, holds: each.contents };
    }
    return result;
  }

  /** CloudWatch can publish to an encrypted topic only with a customer-managed key it may use. */
  private topicKey(): Key {
    const key = new Key(this, 'TopicKey', {
      description: 'Encrypts the SD 3.5 generation alarm topic',
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    key.addToResourcePolicy(
      new PolicyStatement({
        sid: 'CloudWatchAlarmsPublishToTheEncryptedTopic',
        principals: [new ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        resources: ['*'],
      }),
    );
    return key;
  }

  private createDashboard(
    config: StackConfig,
    stateMachine: StateMachine,
    functions: Array<[string, IFunction]>,
    sumOf: (label: string, metrics: Array<[string, IMetric]>) => MathExpression,
  ): Dashboard {
    const stack = Stack.of(this);
    const dashboard = new Dashboard(this, 'Dashboard', {
      dashboardName: `${stack.stackName}-generation`,
      defaultInterval: Duration.hours(12),
    });
    const custom = (name: MetricName, service: Service, statistic = 'Sum', label?: string) =>
      new Metric({
        namespace: config.metricsNamespace,
        metricName: name,
        dimensionsMap: { service },
        statistic,
        period: PERIOD,
        label,
      });
    const perFunction = (title: string, metric: (fn: IFunction, label: string) => IMetric) =>
      new GraphWidget({ title, width: 8, left: functions.map(([name, fn]) => metric(fn, name)) });
    dashboard.addWidgets(
      new TextWidget({
        width: 24,
        height: 2,
        markdown: [
          '## SD 3.5 generation: request → Submit → Wait ⇄ Poll → Persist → Notify',
          `Metrics namespace \`${config.metricsNamespace}\`; alarms go to the topic of output \`AlarmTopicArn\`.`,
        ].join('\n'),
      }),
    );
    dashboard.addWidgets(
      new AlarmStatusWidget({ title: 'Alarms', width: 24, height: 3, alarms: [...this.alarms] }),
    );
    dashboard.addWidgets(
      new GraphWidget({
        title: 'Executions',
        width: 8,
        left: [
          stateMachine.metricStarted({ period: PERIOD, statistic: 'Sum', label: 'started' }),
          stateMachine.metricSucceeded({ period: PERIOD, statistic: 'Sum', label: 'succeeded' }),
          stateMachine.metricFailed({ period: PERIOD, statistic: 'Sum', label: 'failed' }),
          stateMachine.metricTimedOut({ period: PERIOD, statistic: 'Sum', label: 'timed out' }),
          stateMachine.metricAborted({ period: PERIOD, statistic: 'Sum', label: 'canceled' }),
          stateMachine.metricThrottled({ period: PERIOD, statistic: 'Sum', label: 'throttled' }),
        ],
      }),
      new GraphWidget({
        title: 'Outcomes by type',
        width: 8,
        left: [
          new MathExpression({
            label: '',
            expression: `SEARCH('{${config.metricsNamespace},${OUTCOME_DIMENSION},service} MetricName="${METRIC.outcomes}"', 'Sum', 300)`,
            usingMetrics: {},
            period: PERIOD,
          }),
        ],
      }),
      new GraphWidget({
        title: 'Seconds from request to images',
        width: 8,
        left: [
          custom(METRIC.secondsToImages, SERVICE.notify, 'p50', 'p50'),
          custom(METRIC.secondsToImages, SERVICE.notify, 'p90', 'p90'),
          custom(METRIC.secondsToImages, SERVICE.notify, 'Maximum', 'max'),
        ],
      }),
    );
    dashboard.addWidgets(
      new GraphWidget({
        title: 'DashScope calls',
        width: 8,
        left: [
          custom(METRIC.submits, SERVICE.submit, 'Sum', 'tasks submitted'),
          custom(METRIC.polls, SERVICE.poll, 'Sum', 'polls'),
        ],
        right: [
          sumOf('HTTP 429 (throttled)', [
            ['submit', custom(METRIC.throttles, SERVICE.submit)],
            ['poll', custom(METRIC.throttles, SERVICE.poll)],
            ['persist', custom(METRIC.throttles, SERVICE.persist)],
            ['api', custom(METRIC.throttles, SERVICE.api)],
          ]),
        ],
      }),
      new GraphWidget({
        title: 'Stored',
        width: 8,
        left: [custom(METRIC.bytesPersisted, SERVICE.persist, 'Sum', 'bytes')],
        right: [
          custom(METRIC.imagesPersisted, SERVICE.persist, 'Sum', 'images stored'),
          custom(METRIC.imagesFailed, SERVICE.persist, 'Sum', 'images not stored'),
        ],
      }),
      new GraphWidget({
        title: 'Request files',
        width: 8,
        left: [
          custom(METRIC.requestsStarted, SERVICE.trigger, 'Sum', 'lines started'),
          custom(METRIC.requestsRejected, SERVICE.trigger, 'Sum', 'lines rejected'),
        ],
      }),
      new GraphWidget({
        title: 'Admission queue: oldest waiting, seconds past its estimated start',
        width: 8,
        left: [
          custom(METRIC.oldestWaitingSeconds, SERVICE.dispatch, 'Maximum', 'oldest waiting, past estimate'),
        ],
      }),
      new GraphWidget({
        title: 'Generations index',
        width: 8,
        left: [
          ...[SERVICE.submit, SERVICE.poll, SERVICE.notify].map((service) =>
            custom(METRIC.indexWriteFailures, service, 'Sum', `${service} writes failed`),
          ),
          custom(METRIC.indexReconciled, SERVICE.reconcile, 'Sum', 'records corrected'),
        ],
      }),
    );
    dashboard.addWidgets(
      perFunction('Lambda errors', (fn, label) =>
        fn.metricErrors({ statistic: 'Sum', period: PERIOD, label }),
      ),
      perFunction('Lambda throttles', (fn, label) =>
        fn.metricThrottles({ statistic: 'Sum', period: PERIOD, label }),
      ),
      perFunction('Lambda duration p90', (fn, label) =>
        fn.metricDuration({ statistic: 'p90', period: PERIOD, label }),
      ),
    );
    return dashboard;
  }
}
