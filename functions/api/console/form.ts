import type { GenerationRequest } from '../../shared/generation-request.js';

/** A request as the create form shows it: every field as text, the webhook events as a list. */
export interface FormValues {
  readonly prompt: string;
  readonly negative_prompt: string;
  readonly model: string;
  readonly size: string;
  readonly n: string;
  readonly steps: string;
  readonly cfg: string;
  readonly seed: string;
  readonly shift: string;
  readonly init_image: string;
  readonly webhook_url: string;
  readonly priority: string;
  readonly webhook_events: readonly string[];
}

/** The form's text fields, in the order the request schema lists them. */
export const TEXT_FIELDS = [
  'prompt',
  'negative_prompt',
  'model',
  'size',
  'n',
  'steps',
  'cfg',
  'seed',
  'shift',
  'init_image',
  'webhook_url',
  'priority',
] as const;

/** Fields whose text is a number in the request. */
const NUMBER_FIELDS = new Set<string>(['n', 'steps', 'cfg', 'seed', 'shift']);

/** A form submitted as `parseBody({ all: true })` returns it. */
export type SubmittedForm = Record<string, string | File | (string | File)[]>;

const textOf = (value: SubmittedForm[string] | undefined): string => {
  const first = Array.isArray(value) ? value[0] : value;
  return typeof first === 'string' ? first : '';
};

/** The form as it was submitted, to show it again beside its errors. */
export function formValuesOf(form: SubmittedForm): FormValues {
  const events = form.webhook_events;
  const list = Array.isArray(events) ? events : events === undefined ? [] : [events];
  const values = Object.fromEntries(TEXT_FIELDS.map((field) => [field, textOf(form[field])]));
  return {
    ...(values as Omit<FormValues, 'webhook_events'>),
    webhook_events: list.filter((event): event is string => typeof event === 'string'),
  };
}

/**
 * The create body a submitted form stands for, for the API's own schema to judge: an empty field
 * is left out (so its default applies), a number field holding a number becomes that number, and
 * anything else stays text, so the schema names the field and the reason ("n: must be a number").
 * The prompt is always sent, so an empty one is reported as empty rather than missing.
 */
export function requestBodyOf(values: FormValues): Record<string, unknown> {
  const body: Record<string, unknown> = { prompt: values.prompt };
  for (const field of TEXT_FIELDS) {
    const text = values[field];
    if (field === 'prompt' || text.trim() === '') continue;
    const number = Number(text);
    body[field] = NUMBER_FIELDS.has(field) && Number.isFinite(number) ? number : text;
  }
  if (values.webhook_events.length > 0) body.webhook_events = [...values.webhook_events];
  return body;
}

/** The form filled with a request's settings ("use these settings"), or the defaults. */
export function formValuesOfRequest(request: GenerationRequest | undefined): FormValues {
  const text = (value: string | number | undefined) => (value === undefined ? '' : String(value));
  return {
    prompt: text(request?.prompt),
    negative_prompt: text(request?.negative_prompt),
    model: text(request?.model),
    size: text(request?.size),
    n: text(request?.n),
    steps: text(request?.steps),
    cfg: text(request?.cfg),
    seed: text(request?.seed),
    shift: text(request?.shift),
    init_image: text(request?.init_image),
    webhook_url: text(request?.webhook_url),
    priority: text(request?.priority),
    webhook_events: request?.webhook_events ?? [],
  };
}
