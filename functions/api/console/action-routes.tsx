import { randomUUID } from 'node:crypto';
import type { Context, Hono } from 'hono';
import { generationRequestSchema, withDefaultModel } from '../../shared/generation-request.js';
import type { WebhookPolicy } from '../../shared/webhook-url.js';
import { generationIdSchema } from '../../shared/workflow-state.js';
import { checkCreateRequest } from '../create-request.js';
import {
  cancelGeneration,
  createGeneration,
  type GenerationsDeps,
  getGeneration,
  IdempotencyConflictError,
} from '../generations.js';
import { idempotencyKeySchema } from '../schemas.js';
import { noSuchGeneration } from './browse-routes.js';
import { formValuesOf, formValuesOfRequest, requestBodyOf } from './form.js';
import { CreatePage } from './form-views.js';
import { formBodyLimit, page, textOf } from './page.js';
import { CONSOLE_BASE, pageOf } from './views.js';

export interface ActionOptions {
  readonly signedIn: boolean;
  readonly webhookPolicy?: WebhookPolicy;
  /** Who sent a form, recorded as the caller of the generation it creates. */
  readonly callerOf?: (c: Context) => string | undefined;
}

type CreatePageProps = Omit<Parameters<typeof CreatePage>[0], 'idempotencyKey' | 'signedIn'>;

/**
 * What the console changes: the create form (`/console/new`, filled from another generation with
 * `?from=`), its POST (a refused field shows the form again, beside its reason, with a 400), and
 * cancel. The form carries its own idempotency key: a double click or a resent POST starts one.
 */
export function mountActionRoutes(app: Hono, deps: GenerationsDeps, options: ActionOptions): void {
  const createPage = (c: Context, props: CreatePageProps, status: 200 | 400 | 409 = 200) =>
    page(
      c,
      <CreatePage {...props} idempotencyKey={`console-${randomUUID()}`} signedIn={options.signedIn} />,
      status,
    );
  const defaults = () => {
    const request = generationRequestSchema.parse(withDefaultModel({ prompt: '-' }, deps.defaultModel));
    return { ...formValuesOfRequest(request), prompt: '' };
  };

  app.get(`${CONSOLE_BASE}/new`, async (c) => {
    const from = c.req.query('from');
    const source =
      from && generationIdSchema.safeParse(from).success ? await getGeneration(from, deps) : undefined;
    const values = source?.request ? formValuesOfRequest(source.request) : defaults();
    return createPage(c, { values, problems: [] });
  });

  app.post(`${CONSOLE_BASE}/generations`, formBodyLimit(), async (c) => {
    const form = await c.req.parseBody({ all: true });
    const values = formValuesOf(form);
    const checked = checkCreateRequest(requestBodyOf(values), {
      defaultModel: deps.defaultModel,
      webhookPolicy: options.webhookPolicy,
    });
    if (!checked.ok) return createPage(c, { values, problems: checked.problems }, 400);
    const key = idempotencyKeySchema.safeParse(textOf(form.idempotency_key));
    try {
      const created = await createGeneration(
        checked.request,
        {
          idempotencyKey: key.success ? key.data : undefined,
          caller: options.callerOf?.(c),
          source: 'console',
        },
        deps,
      );
      return c.redirect(pageOf(created.id), 303);
    } catch (error) {
      if (!(error instanceof IdempotencyConflictError)) throw error;
      const notice = 'This form was already sent with other values. Check them and send it again.';
      return createPage(c, { values, problems: [], notice }, 409);
    }
  });

  app.post(`${CONSOLE_BASE}/generations/:id/cancel`, async (c) => {
    const id = c.req.param('id');
    const view = generationIdSchema.safeParse(id).success ? await cancelGeneration(id, deps) : undefined;
    if (!view) throw noSuchGeneration();
    return c.redirect(pageOf(view.id), 303);
  });
}
