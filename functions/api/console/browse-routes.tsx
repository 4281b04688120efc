import type { Context, Hono } from 'hono';
import { GENERATION_STATUSES, generationIdSchema } from '../../shared/workflow-state.js';
import { InvalidCursorError } from '../cursor.js';
import { type GenerationsDeps, getGeneration, listGenerations } from '../generations.js';
import { HttpError } from '../http-error.js';
import { listQuerySchema } from '../schemas.js';
import { page } from './page.js';
import { CONSOLE_BASE, GalleryCard, GalleryPage, GenerationPage, LiveSection } from './views.js';

/** Generations per gallery page. */
export const GALLERY_PAGE_SIZE = 24;

/** A generation the console has no page for: the console's 404 page says it. */
export const noSuchGeneration = (): HttpError =>
  new HttpError(404, 'not_found', 'There is no such generation.');

/** The generation a `:id` route names, with presigned links; a 404 when there is none. */
export async function generationOf(c: Context, deps: GenerationsDeps) {
  const id = c.req.param('id') ?? '';
  const view = generationIdSchema.safeParse(id).success ? await getGeneration(id, deps) : undefined;
  if (!view) throw noSuchGeneration();
  return view;
}

/**
 * The console's reading pages: the gallery (`/console/`, newest first, filtered by status, paged
 * by the API's cursors), a generation's page, and the two fragments the console's script fetches
 * to follow a running generation (`live`, `card`).
 */
export function mountBrowseRoutes(app: Hono, deps: GenerationsDeps, signedIn: boolean): void {
  app.get(CONSOLE_BASE, (c) => c.redirect(`${CONSOLE_BASE}/`, 301));

  app.get(`${CONSOLE_BASE}/`, async (c) => {
    const given = Object.entries(c.req.query()).filter(([, value]) => value !== '');
    const query = listQuerySchema.safeParse({ ...Object.fromEntries(given), limit: GALLERY_PAGE_SIZE });
    if (!query.success) {
      const message = 'Only ?status= (one of the statuses) and a cursor from this page are understood.';
      throw new HttpError(400, 'invalid_request', message);
    }
    try {
      const { data, nextCursor } = await listGenerations(query.data, deps, { presign: true });
      return page(
        c,
        <GalleryPage
          items={data}
          status={query.data.status}
          statuses={GENERATION_STATUSES}
          nextCursor={nextCursor}
          paged={query.data.cursor !== undefined}
          signedIn={signedIn}
        />,
      );
    } catch (error) {
      if (!(error instanceof InvalidCursorError)) throw error;
      const message = `This page link ${error.message}; start again from the newest.`;
      throw new HttpError(400, 'invalid_request', message);
    }
  });

  app.get(`${CONSOLE_BASE}/generations/:id`, async (c) =>
    page(c, <GenerationPage view={await generationOf(c, deps)} signedIn={signedIn} now={deps.clock.now()} />),
  );
  app.get(`${CONSOLE_BASE}/generations/:id/live`, async (c) =>
    c.html(<LiveSection view={await generationOf(c, deps)} now={deps.clock.now()} />),
  );
  app.get(`${CONSOLE_BASE}/generations/:id/card`, async (c) =>
    c.html(<GalleryCard view={await generationOf(c, deps)} />),
  );
}
