import { z } from 'zod';
import {
  ADMISSION_DEFAULTS,
  type AdmissionSettings,
  DEFAULT_ACCOUNT,
} from '../functions/shared/admission.js';
import {
  DEFAULT_DEADLINE_SECONDS,
  DEFAULT_MAX_IMAGE_BYTES,
  DEFAULT_RESULT_HOSTS,
  MAX_URL_EXPIRY_SECONDS,
} from '../functions/shared/config.js';
import { DEFAULT_DASHSCOPE_BASE_URL } from '../functions/shared/dashscope/client.js';
import { DEFAULT_REQUEST_EVENT_SOURCE } from '../functions/shared/events.js';
import {
  generationRequestSchema,
  modelSchema,
  withDefaultModel,
} from '../functions/shared/generation-request.js';
import { HOST_PATTERN_MESSAGE, isHostPattern } from '../functions/shared/host-pattern.js';
import { runTimeModelOverridesSchema } from '../functions/shared/run-time-estimate.js';

/** The retention periods CloudWatch Logs accepts, in days (`aws-logs` RetentionDays). */
export const LOG_RETENTION_DAYS = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
] as const;

const days = z.int('must be a whole number of days').positive('must be at least 1 day');
const concurrency = z.int('must be a whole number').min(1, 'must be at least 1 (0 would stop the function)');

/**
 * Reserved concurrency per function: the most concurrent invocations it may have, and as many
 * kept for it out of the account's pool. An invocation over it is throttled; the workflow retries
 * a throttled Task with backoff, and Lambda retries a throttled trigger. AWS keeps 100 of the
 * account's concurrency unreserved, which `cdk deploy` enforces. @default none for every function
 */
const reservedConcurrencySchema = z.strictObject({
  /** @default none */
  submit: concurrency.optional(),
  /** @default none */
  poll: concurrency.optional(),
  /** @default none */
  persist: concurrency.optional(),
  /** @default none */
  notify: concurrency.optional(),
  /** @default none */
  trigger: concurrency.optional(),
  /** @default none */
  admit: concurrency.optional(),
});
export type ReservedConcurrency = z.infer<typeof reservedConcurrencySchema>;

/**
 * The images bucket. Private, TLS-only and encrypted whatever these say; they choose the key,
 * versioning, access logs, what happens on stack deletion and the lifecycle of `generations/`
 * (the images) and `requests/` (request files and their reports).
 */
const bucketConfigSchema = z
  .strictObject({
    /** `s3`: S3-managed keys (SSE-S3); `kms`: a customer-managed KMS key created with the stack (rotated yearly). @default "s3" */
    encryption: z.enum(['s3', 'kms']).default('s3'),
    /** Keep every version of every object (overwrites and deletes become recoverable). @default false */
    versioned: z.boolean().default(false),
    /** Days a noncurrent version is kept, when versioned. @default 30 */
    noncurrentVersionExpirationDays: days.default(30),
    /** Write S3 server access logs to a second bucket created with the stack. @default false */
    accessLogs: z.boolean().default(false),
    /** Days access-log objects are kept. @default 365 */
    accessLogsExpirationDays: days.default(365),
    /** Keep the bucket (and its KMS key) when the stack is deleted. @default true */
    retainOnDelete: z.boolean().default(true),
    /** Move images to S3 Standard-IA after this many days (S3 requires at least 30). @default never */
    infrequentAccessAfterDays: days.min(30, 'must be at least 30 (an S3 rule for Standard-IA)').optional(),
    /** Move images to a Glacier class after this many days. @default never */
    glacierAfterDays: days.optional(),
    /**
     * Which Glacier class `glacierAfterDays` moves images to. `GLACIER_IR` keeps them downloadable
     * through the API's links; `GLACIER` and `DEEP_ARCHIVE` need a restore first. @default "GLACIER_IR"
     */
    glacierStorageClass: z.enum(['GLACIER_IR', 'GLACIER', 'DEEP_ARCHIVE']).default('GLACIER_IR'),
    /** Delete images (and manifests) this many days after they were written. @default never */
    expireAfterDays: days.optional(),
    /** Delete request files under `requests/` and their reports after this many days. @default 30 */
    requestsExpireAfterDays: days.default(30),
  })
  .superRefine((bucket, ctx) => {
    const { infrequentAccessAfterDays: ia, glacierAfterDays: glacier, expireAfterDays: expire } = bucket;
    if (ia !== undefined && glacier !== undefined && glacier <= ia) {
      ctx.addIssue({
        code: 'custom',
        path: ['glacierAfterDays'],
        message: 'must be greater than infrequentAccessAfterDays',
      });
    }
    const lastMove = Math.max(ia ?? 0, glacier ?? 0);
    if (expire !== undefined && expire <= lastMove) {
      ctx.addIssue({
        code: 'custom',
        path: ['expireAfterDays'],
        message: 'must be greater than every transition (infrequentAccessAfterDays, glacierAfterDays)',
      });
    }
  });
export type BucketConfig = z.infer<typeof bucketConfigSchema>;

/**
 * The web console on Lambda (`apiAuth.mode` `jwt` only): browsers sign in at the same issuer
 * (authorization code with PKCE). Register the stack output `ConsoleRedirectUri` as the client's
 * redirect URI. @default none: the console is not served on AWS
 */
const consoleSignInSchema = z.strictObject({
  /** The console's client id at the issuer (an app client of its own, not the API's audience). */
  clientId: z.string().min(1, 'must be the client id registered at the issuer'),
  /** Scopes asked for; `openid` is always added. @default ["openid"] */
  scopes: z
    .array(z.string().regex(/^[!#-[\]-~]+$/, 'must be a scope token (no spaces or quotes)'))
    .default(['openid']),
  /**
   * A Secrets Manager secret (plain string) holding the client secret, for a confidential client.
   * @default none: a public client (PKCE only)
   */
  clientSecretName: z.string().min(1).optional(),
  /** How long a console session lasts before the browser goes back through the issuer. @default 8 */
  sessionHours: z.int('must be a whole number of hours').min(1).max(24).default(8),
});
export type ConsoleSignInConfig = z.infer<typeof consoleSignInSchema>;

/**
 * The stack's configuration, read from the `generation` context key (cdk.json or `-c`).
 * Every field has a default; a bad value fails synth with a message naming the field.
 */
export const stackConfigSchema = z.strictObject({
  /** DashScope API root. @default the mainland endpoint (the only region serving SD 3.5) */
  dashscopeBaseUrl: z
    .url({ protocol: /^https$/, error: 'must be an https URL' })
    .default(DEFAULT_DASHSCOPE_BASE_URL),
  /** `X-DashScope-WorkSpace`; required for sub-account keys. @default none */
  dashscopeWorkspace: z.string().min(1).optional(),
  /** Secrets Manager secret (plain string) holding the DashScope API key. @default "sd35/dashscope-api-key" */
  dashscopeApiKeySecretName: z.string().min(1).default('sd35/dashscope-api-key'),
  /**
   * Several DashScope accounts, each with its own key (a Secrets Manager secret), workspace and
   * depth: the dispatcher sends each admitted generation to the account whose runner is free
   * first. Unset, the one account of `dashscopeApiKeySecretName` and `dashscopeWorkspace`,
   * named "default". @default none
   */
  dashscopeAccounts: z
    .array(
      z.strictObject({
        name: z.string().regex(/^[A-Za-z0-9_-]{1,40}$/, 'must be 1-40 letters, digits, "-" or "_"'),
        apiKeySecretName: z.string().min(1),
        workspace: z.string().min(1).optional(),
        /** Tasks outstanding at once on this account. @default admission.depth */
        depth: z.int().min(1).max(20).optional(),
      }),
    )
    .min(1)
    .refine((list) => new Set(list.map((a) => a.name)).size === list.length, 'account names must differ')
    .optional(),
  /**
   * Admission control (see docs/admission.md): generations wait in a durable queue until the
   * dispatcher grants a slot; interactive requests go first, batch keeps a guaranteed share.
   */
  admission: z
    .strictObject({
      /** Tasks outstanding at DashScope (PENDING or RUNNING) per account. @default 2 */
      depth: z.int().min(1).max(20).default(ADMISSION_DEFAULTS.depth),
      /** DashScope's submits per second per account; grants are spaced to stay under it. @default 2 */
      submitsPerSecond: z.number().positive().max(100).default(ADMISSION_DEFAULTS.submitsPerSecond),
      /** While both lanes wait, one grant in this many goes to batch. @default 4 */
      batchEvery: z.int().min(2).max(1000).default(ADMISSION_DEFAULTS.batchEvery),
      /** The longest a generation waits in the queue before it fails with QueueTimeExceeded. @default 604800 (7 days) */
      maxQueueSeconds: z
        .int()
        .min(60)
        .max(30 * 24 * 3600, 'must be at most 2592000 (30 days)')
        .default(ADMISSION_DEFAULTS.maxQueueSeconds),
    })
    .prefault({}),
  /** Seconds from the DashScope submit (admission) after which a generation fails with DeadlineExceeded. @default 3600 */
  deadlineSeconds: z.int().min(60).max(86_400).default(DEFAULT_DEADLINE_SECONDS),
  /**
   * Most polls per execution. Each poll adds about 9 history events; 2,500 keeps an execution
   * under the 25,000-event limit. @default 1000
   */
  maxPolls: z.int().min(10).max(2500).default(1000),
  /** Hosts persist downloads results from; `*.domain` matches subdomains. @default ["*.aliyuncs.com"] */
  resultHosts: z
    .array(z.string().refine(isHostPattern, HOST_PATTERN_MESSAGE))
    .min(1)
    .default(DEFAULT_RESULT_HOSTS),
  /** Largest image persist stores, in bytes. @default 52428800 (50 MiB) */
  maxImageBytes: z.int().positive().default(DEFAULT_MAX_IMAGE_BYTES),
  /**
   * Overrides of the run-time model the poll policy expects tasks to follow, e.g.
   * `{"secondsPerMegapixelStep": {"stable-diffusion-3.5-large": 0.3}, "spread": 0.15}`
   * (see functions/shared/run-time-estimate.ts). @default none: the documented estimate
   */
  runTimeModel: runTimeModelOverridesSchema.optional(),
  /**
   * Who may call the HTTP API. `iam` (SigV4 with IAM credentials) or `jwt` with an OIDC issuer and
   * audience (e.g. Cognito or Auth0). `GET /healthz` is always open. @default { mode: "iam" }
   */
  apiAuth: z
    .discriminatedUnion('mode', [
      z.strictObject({
        mode: z.literal('iam'),
        // Named here so that a console in iam mode gets its reason, not "unknown field".
        console: z
          .undefined({
            error:
              'is served on AWS only with mode "jwt": a browser cannot sign its requests with SigV4 (see docs/console.md)',
          })
          .optional(),
      }),
      z.strictObject({
        mode: z.literal('jwt'),
        issuer: z.url({ protocol: /^https$/, error: 'must be an https URL' }),
        audience: z.array(z.string().min(1)).min(1),
        console: consoleSignInSchema.optional(),
      }),
    ])
    .default({ mode: 'iam' }),
  /**
   * CORS for the HTTP API, for a web page on another origin that calls it with a bearer token
   * (`jwt` mode). The console needs none: it is served by the API itself. @default none (no CORS
   * headers: browsers allow same-origin calls only)
   */
  apiCors: z
    .strictObject({
      /** Origins allowed to call the API (`https://app.example.com`); never `*`. */
      allowOrigins: z
        .array(
          z
            .url({ protocol: /^https$/, error: 'must be an https origin' })
            .refine((url) => new URL(url).origin === url.replace(/\/$/, ''), 'must be an origin (no path)'),
        )
        .min(1),
      /** How long a browser may cache a preflight answer, in seconds. @default 600 */
      maxAgeSeconds: z.int().min(0).max(86_400).default(600),
    })
    .optional(),
  /**
   * Throttling of the HTTP API's stage (every route): a steady rate and a burst, in requests per
   * second. Past them API Gateway answers 429 before the Lambda runs. The defaults leave room for
   * interactive use and polling clients while keeping a runaway client from spending the Lambda's
   * concurrency and Step Functions' API quotas. @default { rateLimit: 50, burstLimit: 100 }
   */
  apiThrottle: z
    .strictObject({
      /** Steady requests per second (API Gateway's account limit is 10,000). @default 50 */
      rateLimit: z
        .number('must be a number')
        .positive('must be greater than 0')
        .max(10_000, 'must be at most 10000 (the account limit)')
        .default(50),
      /** Requests allowed at once above the rate (API Gateway's account limit is 5,000). @default 100 */
      burstLimit: z
        .int('must be a whole number')
        .min(1, 'must be at least 1')
        .max(5000, 'must be at most 5000 (the account limit)')
        .default(100),
    })
    .prefault({}),
  /** EventBridge bus for "Generation Requested" in and completion events out. @default "default" */
  eventBusName: z.string().min(1).max(256).default('default'),
  /**
   * The `source` values a "Generation Requested" event must carry to start a generation (the rule
   * matches the source and the detail type). EventBridge reserves sources starting with `aws.`.
   * @default ["sd35.requests"]
   */
  requestEventSources: z
    .array(
      z
        .string()
        .min(1)
        .max(256)
        .refine((source) => !source.startsWith('aws.'), 'must not start with "aws." (reserved for AWS)'),
    )
    .min(1)
    .default([DEFAULT_REQUEST_EVENT_SOURCE]),
  /** Deliver per-request webhooks (creates the signing secret). @default true */
  webhooks: z.boolean().default(true),
  /** Scheduled generations: an EventBridge schedule and the request it starts. @default none */
  schedules: z
    .array(
      z.strictObject({
        name: z.string().regex(/^[A-Za-z0-9-]{1,40}$/, 'must be 1-40 letters, digits or "-"'),
        schedule: z.string().regex(/^(rate|cron)\(.+\)$/, 'must be "rate(…)" or "cron(…)"'),
        request: generationRequestSchema,
      }),
    )
    .default([]),
  /**
   * Lifetime of the presigned image URLs the API returns, in seconds: 60 to 43200 (12 hours).
   * A link stops working when the credentials that signed it expire, and the API signs with its
   * role's temporary credentials, which never last longer than 12 hours; each link is also capped
   * at those credentials' expiration when the SDK knows it, and the API reports the real end as
   * `expiresAt`. @default 3600
   */
  urlExpirySeconds: z
    .int('must be a whole number of seconds')
    .min(60, 'must be at least 60')
    .max(
      MAX_URL_EXPIRY_SECONDS,
      `must be at most ${MAX_URL_EXPIRY_SECONDS} (12 hours: links never outlive the API role's temporary credentials)`,
    )
    .default(3600),
  /**
   * The model of a request that names none, whichever way it arrives (API, request file, event,
   * schedule or a direct StartExecution). @default the request schema's, "stable-diffusion-3.5-large"
   */
  defaultModel: modelSchema.optional(),
  /** The images bucket: encryption, versioning, access logs, retention and lifecycle. */
  bucket: bucketConfigSchema.prefault({}),
  /**
   * Reserved concurrency of the submit, poll, persist, notify, trigger and admit functions, each
   * an explicit choice. @default none: the default stack reserves nothing (the dispatcher takes
   * turns through a lease), so it deploys on an account of any concurrency quota
   */
  reservedConcurrency: reservedConcurrencySchema.prefault({}),
  /** Lambda log level (`POWERTOOLS_LOG_LEVEL`). @default "INFO" */
  logLevel: z.enum(['DEBUG', 'INFO', 'WARN', 'ERROR']).default('INFO'),
  /** Days every log group keeps its logs (Lambda, workflow, API access logs). @default 30 */
  logRetentionDays: z
    .literal(LOG_RETENTION_DAYS, { error: `must be one of ${LOG_RETENTION_DAYS.join(', ')}` })
    .default(30),
  /**
   * The state machine's CloudWatch Logs. `ERROR` without execution data by default: execution data
   * holds the request, and prompts can be sensitive. `ALL` with data is for debugging.
   */
  workflowLogging: z
    .strictObject({
      /** @default "ERROR" */
      level: z.enum(['OFF', 'ERROR', 'FATAL', 'ALL']).default('ERROR'),
      /** Log each state's input and output (prompts included). @default false */
      includeExecutionData: z.boolean().default(false),
    })
    .prefault({}),
  /** CloudWatch namespace of the functions' EMF metrics; one per deployment in an account. @default "Sd35Generation" */
  metricsNamespace: z
    .string()
    .regex(/^[A-Za-z0-9._/#:-]{1,255}$/, 'must be 1-255 letters, digits or . - _ / # :')
    .refine((value) => !value.startsWith('AWS/'), 'must not start with "AWS/" (reserved)')
    .default('Sd35Generation'),
  /**
   * What the stack spends on watching itself. `full`: a dashboard, every custom metric (EMF) and
   * the alarm topic encrypted with a key of its own. `lean`, for light use (about $1.40 a month
   * fixed, docs/costs.md): no dashboard, no custom metrics (`POWERTOOLS_METRICS_DISABLED`), and
   * the alarm topic without a customer-managed key; every alarm stays, on AWS's own metrics.
   * @default "full"
   */
  monitoring: z.enum(['full', 'lean']).default('full'),
  /** Alarms: they go to an SNS topic (output `AlarmTopicArn`). */
  alarms: z
    .strictObject({
      /** An address subscribed to the alarm topic (it must confirm the subscription). @default none */
      email: z.email('must be an email address').optional(),
      /** Failed executions within 5 minutes that raise the alarm. @default 1 */
      failedExecutions: z.int().min(1).default(1),
      /**
       * Seconds the oldest generation waiting for admission may be past its estimated start (the
       * dispatcher's `OldestWaitingSeconds`) before the alarm; not in `monitoring: "lean"`, which
       * emits no custom metric. @default 3600
       */
      queueOverdueSeconds: z.int().min(60, 'must be at least 60').default(3600),
    })
    .prefault({}),
});
export type StackConfig = z.infer<typeof stackConfigSchema>;

/**
 * Validates raw context; throws an Error that names each bad field. A string is read as JSON:
 * that is how `cdk synth -c generation='{…}'` passes it.
 */
export function parseStackConfig(raw: unknown): StackConfig {
  let value: unknown = raw ?? {};
  if (typeof value === 'string') {
    try {
      value = JSON.parse(value) as unknown;
    } catch {
      throw new Error(
        'Invalid stack configuration (context "generation"): generation: must be a JSON object',
      );
    }
  }
  const parsed = stackConfigSchema.safeParse(withScheduleDefaults(value));
  if (!parsed.success) {
    const problems = parsed.error.issues.map(
      (issue) => `generation.${issue.path.join('.')}: ${issue.message}`,
    );
    throw new Error(`Invalid stack configuration (cdk.json context "generation"): ${problems.join('; ')}`);
  }
  return parsed.data;
}

/**
 * A scheduled request that names no model gets `defaultModel`, as every other way in does: fill it
 * in before the request schema applies its own default.
 */
function withScheduleDefaults(raw: unknown): unknown {
  if (typeof raw !== 'object' || raw === null) return raw;
  const { defaultModel, schedules } = raw as { defaultModel?: unknown; schedules?: unknown };
  const model = modelSchema.safeParse(defaultModel);
  if (!model.success || !Array.isArray(schedules)) return raw;
  return {
    ...raw,
    schedules: schedules.map((entry: unknown) =>
      typeof entry === 'object' && entry !== null && 'request' in entry
        ? { ...entry, request: withDefaultModel(entry.request, model.data) }
        : entry,
    ),
  };
}

/** The DashScope accounts of a configuration: `dashscopeAccounts`, or the one "default" account. */
export function accountsOf(config: StackConfig): {
  readonly name: string;
  readonly apiKeySecretName: string;
  readonly workspace?: string;
  readonly depth: number;
}[] {
  const accounts = config.dashscopeAccounts ?? [
    {
      name: DEFAULT_ACCOUNT,
      apiKeySecretName: config.dashscopeApiKeySecretName,
      workspace: config.dashscopeWorkspace,
    },
  ];
  return accounts.map((account) => ({ ...account, depth: account.depth ?? config.admission.depth }));
}

/** The dispatcher's and the API's view of admission (`ADMISSION`). */
export function admissionSettingsOf(config: StackConfig): AdmissionSettings {
  return {
    accounts: accountsOf(config).map((account) => ({
      name: account.name,
      depth: account.depth,
      submitsPerSecond: config.admission.submitsPerSecond,
    })),
    batchEvery: config.admission.batchEvery,
    maxQueueSeconds: config.admission.maxQueueSeconds,
  };
}
