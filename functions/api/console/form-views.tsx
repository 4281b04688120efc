import type { Child } from 'hono/jsx';
import { DEFAULT_LANE, LANES } from '../../shared/admission.js';
import {
  MAX_PROMPT_CHARS,
  MAX_SEED,
  MODELS,
  SIDES,
  WEBHOOK_EVENTS,
} from '../../shared/generation-request.js';
import type { FieldProblem } from '../create-request.js';
import type { FormValues } from './form.js';
import { CONSOLE_BASE, Layout } from './views.js';

const SIZES = SIDES.flatMap((width) => SIDES.map((height) => `${width}*${height}`));

const FIELD_LABELS: Readonly<Record<string, string>> = {
  prompt: 'Prompt',
  negative_prompt: 'Negative prompt',
  model: 'Model',
  size: 'Size (width × height)',
  n: 'Images (n)',
  steps: 'Steps',
  cfg: 'CFG scale',
  seed: 'Seed',
  shift: 'Shift',
  init_image: 'Init image URL',
  webhook_url: 'Webhook URL',
  webhook_events: 'Webhook events',
  priority: 'Priority',
};

const idOf = (field: string) => `f-${field}`;

/** A labelled control with its hint and, after a refused submit, its error, tied by aria-describedby. */
function Field(props: {
  name: string;
  hint?: string;
  problem?: string;
  children: (aria: Record<string, string>) => Child;
}) {
  const id = idOf(props.name);
  const described = [props.problem ? `${id}-error` : '', props.hint ? `${id}-hint` : ''].filter(Boolean);
  const aria: Record<string, string> = {
    id,
    name: props.name,
    ...(described.length ? { 'aria-describedby': described.join(' ') } : {}),
    ...(props.problem ? { 'aria-invalid': 'true' } : {}),
  };
  return (
    <div class="field">
      <label for={id}>{FIELD_LABELS[props.name] ?? props.name}</label>
      {props.children(aria)}
      {props.problem ? (
        <p class="error" id={`${id}-error`}>
          {FIELD_LABELS[props.name] ?? props.name} {props.problem}
        </p>
      ) : null}
      {props.hint ? (
        <p class="hint" id={`${id}-hint`}>
          {props.hint}
        </p>
      ) : null}
    </div>
  );
}

/**
 * The create form with every request parameter. The server validates with the API's own schema;
 * each refused field shows its reason beside it, and a summary at the top links to each.
 */
export function CreatePage(props: {
  values: FormValues;
  problems: readonly FieldProblem[];
  idempotencyKey: string;
  notice?: string;
  signedIn: boolean;
}) {
  const { values } = props;
  const problemOf = (field: string) =>
    props.problems
      .filter((problem) => problem.field === field || problem.field.startsWith(`${field}.`))
      .map((problem) => problem.message)
      .join('; ') || undefined;
  const number = (
    name: 'n' | 'steps' | 'cfg' | 'seed' | 'shift',
    attrs: Record<string, string>,
    hint: string,
  ) => (
    <Field name={name} hint={hint} problem={problemOf(name)}>
      {(aria) => <input type="number" inputmode="decimal" value={values[name]} {...attrs} {...aria} />}
    </Field>
  );
  return (
    <Layout title="New generation" signedIn={props.signedIn}>
      <h1>New generation</h1>
      {props.problems.length || props.notice ? (
        <div class="error-summary" role="alert" aria-labelledby="summary-heading">
          <h2 id="summary-heading">{props.notice ?? 'The request was not accepted'}</h2>
          <ul>
            {props.problems.map((problem) => (
              <li>
                {FIELD_LABELS[problem.field.split('.')[0] ?? ''] ? (
                  <a href={`#${idOf(problem.field.split('.')[0] ?? '')}`}>
                    {FIELD_LABELS[problem.field.split('.')[0] ?? '']} {problem.message}
                  </a>
                ) : (
                  `${problem.field}: ${problem.message}`
                )}
              </li>
            ))}
          </ul>
        </div>
      ) : null}
      <form class="create" method="post" action={`${CONSOLE_BASE}/generations`}>
        <input type="hidden" name="idempotency_key" value={props.idempotencyKey} />
        <Field
          name="prompt"
          hint={`What to draw, in English, up to ${MAX_PROMPT_CHARS} characters (DashScope reads about 75 words).`}
          problem={problemOf('prompt')}
        >
          {(aria) => (
            <textarea required maxlength={MAX_PROMPT_CHARS} {...aria}>
              {values.prompt}
            </textarea>
          )}
        </Field>
        <Field
          name="negative_prompt"
          hint="What to keep out of the image. Optional."
          problem={problemOf('negative_prompt')}
        >
          {(aria) => (
            <textarea maxlength={MAX_PROMPT_CHARS} {...aria}>
              {values.negative_prompt}
            </textarea>
          )}
        </Field>
        <div class="row models">
          <Field name="model" problem={problemOf('model')}>
            {(aria) => (
              <select {...aria}>
                {MODELS.map((model) => (
                  <option value={model} selected={model === values.model}>
                    {model}
                  </option>
                ))}
              </select>
            )}
          </Field>
          <Field name="size" problem={problemOf('size')}>
            {(aria) => (
              <select {...aria}>
                {SIZES.map((size) => (
                  <option value={size} selected={size === values.size}>
                    {size.replace('*', ' × ')}
                  </option>
                ))}
              </select>
            )}
          </Field>
          <Field
            name="priority"
            hint="Interactive goes ahead of batch in the admission queue."
            problem={problemOf('priority')}
          >
            {(aria) => (
              <select {...aria}>
                {LANES.map((lane) => (
                  <option value={lane} selected={lane === (values.priority || DEFAULT_LANE.api)}>
                    {lane}
                  </option>
                ))}
              </select>
            )}
          </Field>
        </div>
        <div class="row">
          {number('n', { min: '1', max: '4', step: '1' }, '1 to 4.')}
          {number('steps', { min: '1', max: '500', step: '1' }, '1 to 500; 40 by default.')}
          {number('cfg', { min: '0', max: '20', step: 'any' }, 'Above 0, at most 20; 4 to 5 works best.')}
          {number('shift', { min: '0', max: '20', step: 'any' }, 'Above 0, at most 20; 3 by default.')}
          {number(
            'seed',
            { min: '0', max: String(MAX_SEED), step: '1' },
            'Empty for a random seed; image i uses seed + i.',
          )}
        </div>
        <Field
          name="init_image"
          hint="An http(s) URL of a starting image. Optional."
          problem={problemOf('init_image')}
        >
          {(aria) => <input type="url" value={values.init_image} {...aria} />}
        </Field>
        <Field
          name="webhook_url"
          hint="Where to POST a signed notice when the generation ends. Optional."
          problem={problemOf('webhook_url')}
        >
          {(aria) => <input type="url" value={values.webhook_url} {...aria} />}
        </Field>
        <fieldset
          aria-describedby={problemOf('webhook_events') ? `${idOf('webhook_events')}-error` : undefined}
        >
          <legend id={idOf('webhook_events')}>{FIELD_LABELS.webhook_events}</legend>
          {WEBHOOK_EVENTS.map((event) => (
            <label>
              <input
                type="checkbox"
                name="webhook_events"
                value={event}
                checked={values.webhook_events.includes(event)}
              />
              {event}
            </label>
          ))}
          <p class="hint">None ticked: both.</p>
          {problemOf('webhook_events') ? (
            <p class="error" id={`${idOf('webhook_events')}-error`}>
              {FIELD_LABELS.webhook_events} {problemOf('webhook_events')}
            </p>
          ) : null}
        </fieldset>
        <p>
          <button type="submit" class="primary">
            Generate
          </button>
        </p>
      </form>
    </Layout>
  );
}

/** Asks for the API token once; the server answers with a session cookie. */
export function SignInPage(props: { next: string; problem?: string }) {
  return (
    <Layout title="Sign in">
      <h1>Sign in</h1>
      <p>
        This server needs its API token (<code>API_TOKEN</code>). The browser keeps a session cookie for 12
        hours, never the token.
      </p>
      <form class="create" method="post" action={`${CONSOLE_BASE}/sign-in`}>
        <input type="hidden" name="next" value={props.next} />
        <div class="field">
          <label for="f-token">API token</label>
          <input
            id="f-token"
            name="token"
            type="password"
            required
            autocomplete="current-password"
            {...(props.problem ? { 'aria-invalid': 'true', 'aria-describedby': 'f-token-error' } : {})}
          />
          {props.problem ? (
            <p class="error" id="f-token-error">
              {props.problem}
            </p>
          ) : null}
        </div>
        <p>
          <button type="submit" class="primary">
            Sign in
          </button>
        </p>
      </form>
    </Layout>
  );
}

/** A page that only says something: not found, a bad link, an error. */
export function MessagePage(props: { title: string; message: string; signedIn?: boolean }) {
  return (
    <Layout title={props.title} signedIn={props.signedIn}>
      <h1>{props.title}</h1>
      <p>{props.message}</p>
      <p>
        <a href={`${CONSOLE_BASE}/`}>Back to the gallery</a>
      </p>
    </Layout>
  );
}
