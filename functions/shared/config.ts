import * as z from 'zod';
import { admissionSettingsSchema } from './admission.js';
import { DEFAULT_DASHSCOPE_BASE_URL } from './dashscope/client.js';
import { ConfigError, type ConfigOf, env } from './env-spec.js';
import { DEAD_LETTER_QUEUE_VARIABLE } from './events.js';
import { modelSchema } from './generation-request.js';
import { isSecureOrLoopback } from './host-pattern.js';
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

/** A URL DashScope is reached at: the key travels in a header, so https, or http to loopback only. */
const dashscopeUrl = z
  .url()
  .refine(isSecureOrLoopback, 'must be an https URL (http only for 127.0.0.1 or localhost)');

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
  baseUrl: dashscopeUrl.optional(),
});
export type DashScopeAccountEnv = z.infer<typeof dashscopeAccountSchema>;

/** The variables of every function that calls DashScope (its endpoint, keys and accounts). */
export const dashscopeVariables = {
  DASHSCOPE_BASE_URL: env.text(dashscopeUrl).default(DEFAULT_DASHSCOPE_BASE_URL),
  DASHSCOPE_WORKSPACE: env.text().optional(),
  /** On Lambda: the Secrets Manager secret holding the key. */
  DASHSCOPE_API_KEY_SECRET_ID: env.text().optional(),
  /** Locally: the key itself. Never logged. */
  DASHSCOPE_API_KEY: env.text().optional(),
  DASHSCOPE_TIMEOUT_MS: env.int().default(10_000),
  /** Timeout of a submit; unset, the client's 30 s (a lost submit answer is costly, see docs/decisions/0004-submitting-twice.md). */
  DASHSCOPE_SUBMIT_TIMEOUT_MS: env.int().optional(),
  DASHSCOPE_ACCOUNTS: env
    .json(
      z
        .array(dashscopeAccountSchema)
        .min(1)
        .refine((list) => new Set(list.map((a) => a.name)).size === list.length, 'account names must differ'),
    )
    .optional(),
};

/** What a DashScope-calling function reads of its DashScope variables. */
export type DashScopeEnv = ConfigOf<typeof dashscopeVariables>;

/**
 * A function that calls DashScope needs a key for each account: the key's secret (on AWS) or
 * the key itself (locally), per account or one for all.
 */
export function dashscopeKeyCheck(config: DashScopeEnv): string | undefined {
  const shared = config.DASHSCOPE_API_KEY_SECRET_ID ?? config.DASHSCOPE_API_KEY;
  const keyless = config.DASHSCOPE_ACCOUNTS?.find((account) => !account.secretId && !account.apiKey);
  if (keyless && !shared) return `DASHSCOPE_ACCOUNTS: account "${keyless.name}" has no secretId or apiKey`;
  if (!config.DASHSCOPE_ACCOUNTS && !shared) {
    return 'set DASHSCOPE_API_KEY_SECRET_ID (on AWS) or DASHSCOPE_API_KEY (locally)';
  }
  return undefined;
}

/** The generations index table (and, in the same table, the admission queue). */
export const tableVariable = env.text(z.string().min(3, 'must be a DynamoDB table name'));

/** A state machine's ARN (the API and the trigger start executions of it). */
export const stateMachineArnVariable = env.text(
  z.string().regex(/^arn:aws[\w-]*:states:[\w-]+:\d{12}:stateMachine:[\w-]+$/, 'must be a state machine ARN'),
);

/** The bucket the images are kept in. */
export const bucketVariable = env.text(z.string().min(3));

/** The deployment's model for requests that name none. @default the request schema's */
export const defaultModelVariable = env.text(modelSchema).optional();

/** The run-time model's overrides (JSON), resolved: what the poll policy and the estimates use. */
export const runTimeModelVariable = env
  .json(runTimeModelOverridesSchema.transform(resolveRunTimeModel))
  .default(resolveRunTimeModel());

/** The admission settings (accounts, depths, lanes), JSON. */
export const admissionVariable = env.json(admissionSettingsSchema);

/** The console's sign-in on Lambda: the issuer, the client, and the secrets by id. */
export const consoleOidcEnvSchema = z.strictObject({
  issuer: z.url({ protocol: /^https$/, error: 'must be an https URL' }),
  clientId: z.string().min(1),
  scopes: z.array(z.string().regex(/^[!#-[\]-~]+$/, 'must be a scope token')).default(['openid']),
  sessionSeconds: z.coerce
    .number()
    .int()
    .positive()
    .max(86_400)
    .default(8 * 3600),
  /** The secret holding the key that signs session cookies. */
  sessionKeySecretId: z.string().min(1),
  /** A confidential client's secret. @default none: a public client */
  clientSecretId: z.string().min(1).optional(),
});
export type ConsoleOidcEnv = z.infer<typeof consoleOidcEnvSchema>;

export { ConfigError };

/** The signing secret of webhooks and where refused announcements go: Notify's and the reconciler's. */
export const announcementVariables = {
  EVENT_BUS_NAME: env.text().default('default'),
  BUCKET_NAME: bucketVariable,
  /** On AWS: the secret that signs webhooks; unset = webhooks off. */
  WEBHOOK_SECRET_ID: env.text().optional(),
  /** Locally: the signing secret itself. */
  WEBHOOK_SECRET: env.text(z.string().min(16, 'must be at least 16 characters')).optional(),
  /**
   * The SQS queue an announcement EventBridge would not take goes to (the stack sets it). Unset:
   * the error log.
   */
  [DEAD_LETTER_QUEUE_VARIABLE]: env
    .text(z.url({ protocol: /^https$/, error: 'must be an SQS queue URL' }))
    .optional(),
};
