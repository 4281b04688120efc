import { z } from 'zod';
import {
  DEFAULT_DEADLINE_SECONDS,
  DEFAULT_MAX_IMAGE_BYTES,
  DEFAULT_RESULT_HOSTS,
} from '../functions/shared/config.js';
import { DEFAULT_DASHSCOPE_BASE_URL } from '../functions/shared/dashscope/client.js';
import { generationRequestSchema } from '../functions/shared/generation-request.js';
import { HOST_PATTERN_MESSAGE, isHostPattern } from '../functions/shared/host-pattern.js';
import { runTimeModelOverridesSchema } from '../functions/shared/run-time-estimate.js';

/** Room left after the deadline for Persist, before the execution itself times out. */
export const PERSIST_ALLOWANCE_SECONDS = 900;

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
  /** Seconds from submit after which a generation fails with DeadlineExceeded. @default 3600 */
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
      z.strictObject({ mode: z.literal('iam') }),
      z.strictObject({
        mode: z.literal('jwt'),
        issuer: z.url({ protocol: /^https$/, error: 'must be an https URL' }),
        audience: z.array(z.string().min(1)).min(1),
      }),
    ])
    .default({ mode: 'iam' }),
  /** EventBridge bus for "Generation Requested" in and completion events out. @default "default" */
  eventBusName: z.string().min(1).max(256).default('default'),
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
  /** Lifetime of the presigned image URLs the API returns, in seconds (at most 7 days). @default 3600 */
  urlExpirySeconds: z.int().min(60).max(604_800).default(3600),
});
export type StackConfig = z.infer<typeof stackConfigSchema>;

/** Validates raw context; throws an Error that names each bad field. */
export function parseStackConfig(raw: unknown): StackConfig {
  const parsed = stackConfigSchema.safeParse(raw ?? {});
  if (!parsed.success) {
    const problems = parsed.error.issues.map(
      (issue) => `generation.${issue.path.join('.')}: ${issue.message}`,
    );
    throw new Error(`Invalid stack configuration (cdk.json context "generation"): ${problems.join('; ')}`);
  }
  return parsed.data;
}
