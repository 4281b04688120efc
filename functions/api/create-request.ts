import {
  type GenerationRequest,
  generationRequestSchema,
  withDefaultModel,
} from '../shared/generation-request.js';
import { checkWebhookUrl, type WebhookPolicy, WebhookRefusedError } from '../shared/webhook-url.js';
import { detailsOf } from '../shared/zod-details.js';

/** One bad field of a request: its name (`n`, `webhook_url`) and why. */
export interface FieldProblem {
  readonly field: string;
  readonly message: string;
}

/** A create body checked: the request with defaults applied, or every bad field. */
export type CheckedRequest =
  | { readonly ok: true; readonly request: GenerationRequest }
  | { readonly ok: false; readonly problems: FieldProblem[] };

/**
 * Checks a create body the way every way in of the API does (the JSON API and the console's form):
 * the request schema, with the deployment's default model filled in, then the webhook policy, so a
 * `webhook_url` the notifier would refuse is refused at creation. Never throws for bad input.
 */
export function checkCreateRequest(
  body: unknown,
  options: { readonly defaultModel?: GenerationRequest['model']; readonly webhookPolicy?: WebhookPolicy },
): CheckedRequest {
  const parsed = generationRequestSchema.safeParse(withDefaultModel(body, options.defaultModel));
  if (!parsed.success) return { ok: false, problems: detailsOf(parsed.error) };
  const webhookProblem = refusedWebhook(parsed.data.webhook_url, options.webhookPolicy ?? {});
  if (webhookProblem) return { ok: false, problems: [{ field: 'webhook_url', message: webhookProblem }] };
  return { ok: true, request: parsed.data };
}

/** Why the notifier would refuse this webhook URL, or undefined when it would deliver (or there is none). */
function refusedWebhook(url: string | undefined, policy: WebhookPolicy): string | undefined {
  if (url === undefined) return undefined;
  try {
    checkWebhookUrl(url, policy);
    return undefined;
  } catch (error) {
    if (!(error instanceof WebhookRefusedError)) throw error;
    return `is refused by this deployment's notifier: ${error.message}`;
  }
}
