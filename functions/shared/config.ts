import * as z from 'zod';
import { admissionSettingsSchema } from './admission.js';
import { DEFAULT_DASHSCOPE_BASE_URL } from './dashscope/client.js';
import { DOWNLOAD_BUDGET } from './download-budget.js';
import { modelSchema } from './generation-request.js';
import { HOST_PATTERN_MESSAGE, isHostPattern, isSecureOrLoopback } from './host-pattern.js';
import { resolveRunTimeModel, runTimeModelOverridesSchema } from './run-time-estimate.js';

/** DashScope's result hosts: pre-signed OSS URLs on regional buckets under aliyuncs.com. */
export const DEFAULT_RESULT_HOSTS = ['*.aliyuncs.com'];

/** Largest result image persist accepts, in bytes. A 1024×1024 PNG is a few MB. */
export const DEFAULT_MAX_IMAGE_BYTES = 50 * 1024 * 1024;

/** The overall time a generation may take from submit to the last poll, in seconds. */
export const DEFAULT_DEADLINE_SECONDS = 3600;

/**
 * The longest an image link may be promised for. A presigned URL stops working when the
 * credentials that signed it expire, and the API signs with its role's temporary credentials:
 * no STS role session lasts longer than 12 hours, so no longer promise can be kept.
 */
export const MAX_URL_EXPIRY_SECONDS = 12 * 3600;

const list = z
  .string()
  .transform((value) =>
    value
      .split(',')
      .map((item) => item.trim())
      .filter(Boolean),
  )
  .pipe(z.array(z.string().refine(isHostPattern, HOST_PATTERN_MESSAGE)).min(1));

const positiveInt = z.coerce.number().int().positive();

/** JSON in an environment variable, parsed, then checked by `schema`. */
const jsonOf = <T extends z.ZodType>(schema: T) =>
  z
    .string()
    .transform((text, ctx) => {
      try {
        return JSON.parse(text) as unknown;
      } catch {
        ctx.addIssue({ code: 'custom', message: 'must be JSON' });
        return z.NEVER;
      }
    })
    .pipe(schema);

/**
 * The DashScope accounts a function may use, by name (`DASHSCOPE_ACCOUNTS`, JSON). Each has its
 * own key: a Secrets Manager secret on AWS, the key itself locally; and optionally its own
 * workspace and endpoint. Unset, the one account of `DASHSCOPE_API_KEY_SECRET_ID` (or
 * `DASHSCOPE_API_KEY`), `DASHSCOPE_WORKSPACE` and `DASHSCOPE_BASE_URL`, named "default".
 */
export const dashscopeAccountSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9_-]{1,40}$/, 'must be 1-40 letters, digits, "-" or "_"'),
  secretId: z.string().min(1).optional(),
  apiKey: z.string().min(1).optional(),
  workspace: z.string().min(1).optional(),
  baseUrl: z
    .url()
    .refine(isSecureOrLoopback, 'must be an https URL (http only for 127.0.0.1 or localhost)')
    .optional(),
});
export type DashScopeAccountEnv = z.infer<typeof dashscopeAccountSchema>;

const dashscopeEnvSchema = z.object({
  // The key travels in a header: https, or plain http only to the local emulator on loopback.
  DASHSCOPE_BASE_URL: z
    .url()
    .refine(isSecureOrLoopback, 'must be an https URL (http only for 127.0.0.1 or localhost)')
    .default(DEFAULT_DASHSCOPE_BASE_URL),
  DASHSCOPE_WORKSPACE: z.string().min(1).optional(),
  /** On Lambda: the Secrets Manager secret holding the key. */
  DASHSCOPE_API_KEY_SECRET_ID: z.string().min(1).optional(),
  /** Locally: the key itself. Never logged. */
  DASHSCOPE_API_KEY: z.string().min(1).optional(),
  DASHSCOPE_TIMEOUT_MS: positiveInt.default(10_000),
  /** Timeout of a submit; unset, the client's 30 s (a lost submit answer is costly, see ARCHITECTURE.md). */
  DASHSCOPE_SUBMIT_TIMEOUT_MS: positiveInt.optional(),
  DASHSCOPE_ACCOUNTS: jsonOf(
    z
      .array(dashscopeAccountSchema)
      .min(1)
      .refine((list) => new Set(list.map((a) => a.name)).size === list.length, 'account names must differ'),
  ).optional(),
});

/** JSON overrides of the run-time model the poll policy uses (see run-time-estimate.ts). */
const runTimeModelJson = jsonOf(runTimeModelOverridesSchema).transform(resolveRunTimeModel);

/** The generations index table: required where the function cannot work without it. */
const tableName = z.string().min(3, 'must be a DynamoDB table name');
const indexEnvSchema = z.object({ GENERATIONS_TABLE: tableName });
/** The workflow's functions record progress when given the table (the stack always gives it). */
const optionalIndexEnvSchema = z.object({
  GENERATIONS_TABLE: tableName.optional(),
  /** The dispatcher of the admission queue (in the same table): slots are noted and released. */
  DISPATCHER_FUNCTION: z.string().min(1).optional(),
});

const submitEnvSchema = dashscopeEnvSchema.extend({
  ...optionalIndexEnvSchema.shape,
  DEADLINE_SECONDS: positiveInt.default(DEFAULT_DEADLINE_SECONDS),
  RUN_TIME_MODEL: runTimeModelJson.default(resolveRunTimeModel()),
});

const pollEnvSchema = dashscopeEnvSchema.extend(optionalIndexEnvSchema.shape);

const persistEnvSchema = dashscopeEnvSchema.extend({
  BUCKET_NAME: z.string().min(3),
  RESULT_HOSTS: list.default(DEFAULT_RESULT_HOSTS),
  MAX_IMAGE_BYTES: positiveInt.default(DEFAULT_MAX_IMAGE_BYTES),
  /** Deadline of one result download, whole body included (see download-budget.ts). */
  DOWNLOAD_TIMEOUT_MS: positiveInt.default(DOWNLOAD_BUDGET.timeoutMs),
  /** A download slower than this over the stall window is abandoned as stalled. */
  DOWNLOAD_MIN_BYTES_PER_SECOND: positiveInt.default(DOWNLOAD_BUDGET.minBytesPerSecond),
  DOWNLOAD_STALL_WINDOW_MS: positiveInt.default(DOWNLOAD_BUDGET.stallWindowMs),
});

/** The console's sign-in on Lambda: the issuer, the client, and the secrets by id. */
export const consoleOidcEnvSchema = z.strictObject({
  issuer: z.url({ protocol: /^https$/, error: 'must be an https URL' }),
  clientId: z.string().min(1),
  scopes: z.array(z.string().regex(/^[!#-[\]-~]+$/, 'must be a scope token')).default(['openid']),
  sessionSeconds: positiveInt.max(86_400).default(8 * 3600),
  /** The secret holding the key that signs session cookies. */
  sessionKeySecretId: z.string().min(1),
  /** A confidential client's secret. @default none: a public client */
  clientSecretId: z.string().min(1).optional(),
});
export type ConsoleOidcEnv = z.infer<typeof consoleOidcEnvSchema>;

const apiEnvSchema = dashscopeEnvSchema.extend({
  ...indexEnvSchema.shape,
  STATE_MACHINE_ARN: z
    .string()
    .regex(/^arn:aws[\w-]*:states:[\w-]+:\d{12}:stateMachine:[\w-]+$/, 'must be a state machine ARN'),
  BUCKET_NAME: z.string().min(3),
  /** Lifetime of the presigned image URLs the API hands out; links never outlive the signing credentials (≤ 12 h). */
  URL_EXPIRY_SECONDS: positiveInt.max(MAX_URL_EXPIRY_SECONDS).default(3600),
  /** The deployment's model for requests that name none. @default the request schema's */
  DEFAULT_MODEL: modelSchema.optional(),
  /** The admission settings, for queue positions and start estimates. @default no positions shown */
  ADMISSION: jsonOf(admissionSettingsSchema).optional(),
  /**
   * The web console's OIDC sign-in (`apiAuth.console` in `jwt` mode); unset, the console is not
   * served. Secrets are named by id, never given. @default none
   */
  CONSOLE_OIDC: jsonOf(consoleOidcEnvSchema).optional(),
});

/** The notifier calls no DashScope: its schema stands alone. */
const notifyEnvSchema = optionalIndexEnvSchema.extend({
  EVENT_BUS_NAME: z.string().min(1).default('default'),
  BUCKET_NAME: z.string().min(3),
  /** On AWS: the secret that signs webhooks; unset = webhooks off. */
  WEBHOOK_SECRET_ID: z.string().min(1).optional(),
  /** Locally: the signing secret itself. */
  WEBHOOK_SECRET: z.string().min(16, 'must be at least 16 characters').optional(),
});

const triggerEnvSchema = indexEnvSchema.extend({
  STATE_MACHINE_ARN: z
    .string()
    .regex(/^arn:aws[\w-]*:states:[\w-]+:\d{12}:stateMachine:[\w-]+$/, 'must be a state machine ARN'),
  EVENT_BUS_NAME: z.string().min(1).default('default'),
  /** The deployment's model for requests that name none. @default the request schema's */
  DEFAULT_MODEL: modelSchema.optional(),
});

export type DashScopeEnv = z.infer<typeof dashscopeEnvSchema>;
export type SubmitConfig = z.infer<typeof submitEnvSchema>;
export type PollConfig = z.infer<typeof pollEnvSchema>;
export type PersistConfig = z.infer<typeof persistEnvSchema>;
export type ApiConfig = z.infer<typeof apiEnvSchema>;
export type NotifyConfig = z.infer<typeof notifyEnvSchema>;
export type TriggerConfig = z.infer<typeof triggerEnvSchema>;

/** The reconciler announces executions that ended outside the workflow, as Notify does. */
const reconcileEnvSchema = notifyEnvSchema.extend({
  ...indexEnvSchema.shape,
  STATE_MACHINE_ARN: triggerEnvSchema.shape.STATE_MACHINE_ARN,
});
export type ReconcileConfig = z.infer<typeof reconcileEnvSchema>;

/** Admit stores the waiting generation and rings the dispatcher. */
const admitEnvSchema = indexEnvSchema.extend({
  DISPATCHER_FUNCTION: z.string().min(1),
  RUN_TIME_MODEL: runTimeModelJson.default(resolveRunTimeModel()),
});

/** The dispatcher grants slots by the accounts' limits and the lane rules. */
const dispatchEnvSchema = indexEnvSchema.extend({ ADMISSION: jsonOf(admissionSettingsSchema) });

export type AdmitConfig = z.infer<typeof admitEnvSchema>;
export type DispatchConfig = z.infer<typeof dispatchEnvSchema>;

const schemas = {
  admit: admitEnvSchema,
  dispatch: dispatchEnvSchema,
  submit: submitEnvSchema,
  poll: pollEnvSchema,
  persist: persistEnvSchema,
  api: apiEnvSchema,
  notify: notifyEnvSchema,
  trigger: triggerEnvSchema,
  reconcile: reconcileEnvSchema,
};
type Schemas = typeof schemas;

/** Functions that call DashScope and so need its API key. */
const NEEDS_DASHSCOPE_KEY = new Set<keyof Schemas>(['submit', 'poll', 'persist', 'api']);

/** Raised at cold start when a variable is missing or malformed; names the variable. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/**
 * Parses the environment variables one function needs. The only place that reads `process.env`
 * (handlers pass it in). Fails at cold start with a message naming each bad variable.
 */
export function loadConfig<K extends keyof Schemas>(
  fn: K,
  env: Record<string, string | undefined>,
): z.infer<Schemas[K]> {
  const blankAsUnset = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== ''));
  const parsed = schemas[fn].safeParse(blankAsUnset);
  if (!parsed.success) {
    const problems = parsed.error.issues
      .map((issue) => `${issue.path.join('.')}: ${issue.message}`)
      .join('; ');
    throw new ConfigError(`Invalid configuration for the ${fn} function: ${problems}`);
  }
  const config = parsed.data as z.infer<Schemas[K]>;
  const keys = config as {
    DASHSCOPE_API_KEY_SECRET_ID?: string;
    DASHSCOPE_API_KEY?: string;
    DASHSCOPE_ACCOUNTS?: DashScopeAccountEnv[];
  };
  const keyless = keys.DASHSCOPE_ACCOUNTS?.find((account) => !account.secretId && !account.apiKey);
  if (
    NEEDS_DASHSCOPE_KEY.has(fn) &&
    keyless &&
    !keys.DASHSCOPE_API_KEY_SECRET_ID &&
    !keys.DASHSCOPE_API_KEY
  ) {
    throw new ConfigError(
      `Invalid configuration for the ${fn} function: DASHSCOPE_ACCOUNTS: account "${keyless.name}" has no secretId or apiKey`,
    );
  }
  if (
    NEEDS_DASHSCOPE_KEY.has(fn) &&
    !keys.DASHSCOPE_ACCOUNTS &&
    !keys.DASHSCOPE_API_KEY_SECRET_ID &&
    !keys.DASHSCOPE_API_KEY
  ) {
    throw new ConfigError(
      `Invalid configuration for the ${fn} function: set DASHSCOPE_API_KEY_SECRET_ID (on AWS) or DASHSCOPE_API_KEY (locally)`,
    );
  }
  return config;
}
