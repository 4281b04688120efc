import type { Child } from 'hono/jsx';
import * as z from 'zod';
import { parseSize } from '../../shared/generation-request.js';
import type { GenerationStatus } from '../../shared/workflow-state.js';
import type { GenerationView } from '../schemas.js';
import { FAVICON_SVG_NAME } from './favicon.js';
import { relativeFromNow } from './relative-time.js';

/** Where the console lives on the app; every link is absolute under it. */
export const CONSOLE_BASE = '/console';
export const pageOf = (id: string) => `${CONSOLE_BASE}/generations/${encodeURIComponent(id)}`;

const ENDED: ReadonlySet<GenerationStatus> = new Set(['succeeded', 'failed', 'canceled', 'expired']);
/** Whether a generation may still change (and can be canceled). */
export const isActive = (status: GenerationStatus) => !ENDED.has(status);

/**
 * Where a generation waits in the admission queue, when the API says so. The field is new: read
 * leniently, and a shape this console does not know is not shown rather than failing the page.
 */
const queueSchema = z.object({
  lane: z.string().optional(),
  position: z.number().int().nonnegative(),
  estimatedStartAt: z.string().optional(),
});
export type QueuePlace = z.infer<typeof queueSchema>;

export function queueOf(view: GenerationView): QueuePlace | undefined {
  const parsed = queueSchema.safeParse((view as { queue?: unknown }).queue);
  return parsed.success ? parsed.data : undefined;
}

/** A UTC time as people read it, in a machine-readable `<time>`. */
export function When({ iso }: { iso: string | undefined }) {
  if (!iso) return <span class="meta">—</span>;
  const date = new Date(iso.includes('T') || iso.endsWith('Z') ? iso : `${iso.replace(' ', 'T')}Z`);
  if (Number.isNaN(date.getTime())) return <span>{iso}</span>;
  return <time datetime={date.toISOString()}>{date.toISOString().replace('T', ' ').slice(0, 19)} UTC</time>;
}

/** An estimated moment as relative text ("in about 18 min"), in a machine-readable `<time>`. */
export function Soon({ iso, now }: { iso: string; now: number }) {
  const text = relativeFromNow(iso, now);
  return text ? <time datetime={iso}>{text}</time> : <span class="meta">—</span>;
}

function secondsBetween(from: string | undefined, to: string | undefined): string | undefined {
  const asDate = (text: string) => new Date(text.includes('T') ? text : `${text.replace(' ', 'T')}Z`);
  if (!from || !to) return undefined;
  const ms = asDate(to).getTime() - asDate(from).getTime();
  return Number.isFinite(ms) && ms >= 0 ? `${(ms / 1000).toFixed(1)} s` : undefined;
}

export const excerpt = (text: string, max: number) =>
  text.length > max ? `${text.slice(0, max - 1)}…` : text;
const promptOf = (view: GenerationView) => view.request?.prompt ?? '(request not readable)';
const kb = (bytes: number) => `${Math.max(1, Math.round(bytes / 1024))} KB`;

export function StatusBadge({ status }: { status: GenerationStatus }) {
  return <span class={`badge ${status}`}>{status}</span>;
}

/** One line on progress and queue place, for the page and for screen readers; `now` to say when it starts. */
export function progressLine(view: GenerationView, queue: QueuePlace | undefined, now: number): string {
  const { done, failed, total } = view.progress;
  const images = `${done} of ${total} image${total === 1 ? '' : 's'}${failed ? `, ${failed} failed` : ''}`;
  if (view.status === 'queued' && queue) {
    const when = queue.estimatedStartAt ? relativeFromNow(queue.estimatedStartAt, now) : undefined;
    const eta = when ? `, expected to start ${when}` : '';
    return `Queued: position ${queue.position}${queue.lane ? ` in the ${queue.lane} lane` : ''}${eta}`;
  }
  return `${view.status[0]?.toUpperCase()}${view.status.slice(1)}: ${images}`;
}

export function Layout(props: { title: string; signedIn?: boolean; children?: Child }) {
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <meta name="referrer" content="no-referrer" />
        <title>{`${props.title} · SD 3.5 console`}</title>
        <link rel="icon" type="image/svg+xml" href={`${CONSOLE_BASE}/assets/${FAVICON_SVG_NAME}`} />
        <link rel="stylesheet" href={`${CONSOLE_BASE}/assets/console.css`} />
        <script src={`${CONSOLE_BASE}/assets/console.js`} defer />
      </head>
      <body>
        <a class="skip" href="#main">
          Skip to content
        </a>
        <header>
          <nav aria-label="Console">
            <a class="brand" href={`${CONSOLE_BASE}/`}>
              SD 3.5 console
            </a>
            <a href={`${CONSOLE_BASE}/`}>Gallery</a>
            <a href={`${CONSOLE_BASE}/batches`}>Batches</a>
            <a href={`${CONSOLE_BASE}/new`}>New generation</a>
            {props.signedIn ? (
              <form method="post" action={`${CONSOLE_BASE}/sign-out`}>
                <button type="submit">Sign out</button>
              </form>
            ) : null}
          </nav>
        </header>
        <main id="main">{props.children}</main>
      </body>
    </html>
  );
}

/**
 * A gallery card; a card of a generation still running is followed live, unless `follow` is
 * false (a batch's page follows its cards as one section). It shows the first image's thumbnail
 * (the full image only for images stored without one), so a page of 24 cards stays small
 * (docs/console.md).
 */
export function GalleryCard({ view, follow = true }: { view: GenerationView; follow?: boolean }) {
  const first = view.images?.[0];
  const prompt = promptOf(view);
  const { width, height } = parseSize(view.request?.size ?? '1024*1024');
  const live = follow && isActive(view.status) ? { 'data-live-src': `${pageOf(view.id)}/card` } : {};
  return (
    <li class="card" data-live-status={view.status} {...live}>
      <a class="open" href={pageOf(view.id)}>
        {first ? (
          <img
            class="thumb"
            src={first.thumbnailUrl ?? first.url}
            alt={excerpt(prompt, 250)}
            width={String(first.thumbnail?.width ?? Math.round((256 * width) / Math.max(width, height)))}
            height={String(first.thumbnail?.height ?? Math.round((256 * height) / Math.max(width, height)))}
            loading="lazy"
            decoding="async"
          />
        ) : (
          <div class="placeholder" aria-hidden="true">
            {view.status === 'succeeded' ? 'no image' : view.status}
          </div>
        )}
        <span class="text">
          <span class="prompt">{excerpt(prompt, 160)}</span>
        </span>
      </a>
      <div class="text meta">
        <span>
          <StatusBadge status={view.status} /> {view.progress.total} image
          {view.progress.total === 1 ? '' : 's'}
        </span>
        <When iso={view.createdAt} />
      </div>
    </li>
  );
}

export function GalleryPage(props: {
  items: GenerationView[];
  status?: GenerationStatus;
  statuses: readonly GenerationStatus[];
  nextCursor?: string;
  paged: boolean;
  signedIn: boolean;
}) {
  const query = (extra: Record<string, string>) =>
    `?${new URLSearchParams({ ...(props.status ? { status: props.status } : {}), ...extra })}`;
  return (
    <Layout title="Gallery" signedIn={props.signedIn}>
      <h1>Gallery</h1>
      <div class="toolbar">
        <form method="get" action={`${CONSOLE_BASE}/`}>
          <div class="field">
            <label for="status-filter">Status</label>
            <select id="status-filter" name="status">
              <option value="">all</option>
              {props.statuses.map((status) => (
                <option value={status} selected={status === props.status}>
                  {status}
                </option>
              ))}
            </select>
          </div>
          <button type="submit">Filter</button>
        </form>
        <a class="button primary" href={`${CONSOLE_BASE}/new`}>
          New generation
        </a>
      </div>
      {props.items.length === 0 ? (
        <p>
          No generations{props.status ? ` with status ${props.status}` : ''} yet.{' '}
          <a href={`${CONSOLE_BASE}/new`}>Create one</a>.
        </p>
      ) : (
        <ul class="gallery" aria-label="Generations, newest first">
          {props.items.map((view) => (
            <GalleryCard view={view} />
          ))}
        </ul>
      )}
      <nav class="pager" aria-label="Pages">
        {props.paged ? <a href={`${CONSOLE_BASE}/${query({})}`}>Newest</a> : null}
        {props.nextCursor ? (
          <a rel="next" href={`${CONSOLE_BASE}/${query({ cursor: props.nextCursor })}`}>
            Older
          </a>
        ) : null}
      </nav>
    </Layout>
  );
}

/** The part of a generation's page that changes while it runs; the script swaps it for a fresh copy. */
export function LiveSection({ view, now }: { view: GenerationView; now: number }) {
  const queue = queueOf(view);
  const line = progressLine(view, queue, now);
  const prompt = promptOf(view);
  const { width, height } = parseSize(view.request?.size ?? '1024*1024');
  const live = isActive(view.status) ? { 'data-live-src': `${pageOf(view.id)}/live` } : {};
  const total = view.progress.total;
  return (
    <LiveRegion status={view.status} announce={line} live={live}>
      <div class="status-line">
        <StatusBadge status={view.status} />
        <span>{line}</span>
        {isActive(view.status) ? (
          <progress
            max={String(Math.max(total, 1))}
            value={String(view.progress.done)}
            aria-label="Images done"
          />
        ) : null}
        {isActive(view.status) ? (
          <form method="post" action={`${pageOf(view.id)}/cancel`}>
            <button type="submit" class="danger">
              Cancel generation
            </button>
          </form>
        ) : null}
      </div>
      {view.error ? (
        <div class="problem" role="alert">
          <strong>{view.error.type}</strong>: {view.error.message}
          {view.error.upstreamCode ? ` (DashScope code ${view.error.upstreamCode})` : ''}
        </div>
      ) : null}
      {view.failedImages?.length ? (
        <div class="problem">
          <h2>Images that failed</h2>
          <ul>
            {view.failedImages.map((failed) => (
              <li>
                Image {failed.index + 1}: <strong>{failed.type}</strong>: {failed.message}
              </li>
            ))}
          </ul>
        </div>
      ) : null}
      {view.images?.length ? (
        <>
          <h2>Images</h2>
          <div class="images">
            {view.images.map((image) => (
              <figure>
                <img
                  src={image.url}
                  alt={`${excerpt(prompt, 400)} (${image.index + 1} of ${total})`}
                  width={String(width)}
                  height={String(height)}
                />
                <figcaption class="meta">
                  Image {image.index + 1} · seed <code>{image.seed}</code> · {kb(image.bytes)} ·{' '}
                  <a href={image.url} download={`${view.id}-${image.index}.png`}>
                    Download image {image.index + 1}
                  </a>
                </figcaption>
              </figure>
            ))}
          </div>
        </>
      ) : null}
      <h2>Task and timings</h2>
      <dl class="facts">
        <dt>DashScope task</dt>
        <dd>{view.dashscope.taskId ? <code>{view.dashscope.taskId}</code> : '—'}</dd>
        <dt>Created</dt>
        <dd>
          <When iso={view.createdAt} />
        </dd>
        {queue?.estimatedStartAt ? (
          <>
            <dt>Expected start</dt>
            <dd>
              <Soon iso={queue.estimatedStartAt} now={now} />
            </dd>
          </>
        ) : null}
        <dt>Submitted to DashScope</dt>
        <dd>
          <When iso={view.dashscope.submitTime} />
        </dd>
        <dt>Started at DashScope</dt>
        <dd>
          <When iso={view.dashscope.scheduledTime} />
          {secondsBetween(view.dashscope.submitTime, view.dashscope.scheduledTime)
            ? ` (waited ${secondsBetween(view.dashscope.submitTime, view.dashscope.scheduledTime)})`
            : ''}
        </dd>
        <dt>Ended at DashScope</dt>
        <dd>
          <When iso={view.dashscope.endTime} />
          {secondsBetween(view.dashscope.scheduledTime, view.dashscope.endTime)
            ? ` (ran ${secondsBetween(view.dashscope.scheduledTime, view.dashscope.endTime)})`
            : ''}
        </dd>
        <dt>Ended</dt>
        <dd>
          <When iso={view.endedAt} />
          {secondsBetween(view.createdAt, view.endedAt)
            ? ` (${secondsBetween(view.createdAt, view.endedAt)} in all)`
            : ''}
        </dd>
      </dl>
    </LiveRegion>
  );
}

export function GenerationPage(props: { view: GenerationView; signedIn: boolean; now: number }) {
  const { view, signedIn } = props;
  const request = view.request;
  const facts: Array<[string, string | number | undefined]> = request
    ? [
        ['Prompt', request.prompt],
        ['Negative prompt', request.negative_prompt ?? '—'],
        ['Model', request.model],
        ['Size', request.size.replace('*', ' × ')],
        ['Images (n)', request.n],
        ['Steps', request.steps],
        ['CFG scale', request.cfg],
        ['Shift', request.shift],
        ['Seed', request.seed ?? 'random (each image’s seed is shown with it)'],
        ['Init image', request.init_image ?? '—'],
        [
          'Webhook',
          request.webhook_url
            ? `${request.webhook_url} (${(request.webhook_events ?? ['both']).join(', ')})`
            : '—',
        ],
        ['Source', view.source ?? '—'],
      ]
    : [];
  return (
    <Layout title={`Generation ${view.id}`} signedIn={signedIn}>
      <h1>
        Generation <code>{view.id}</code>
      </h1>
      <p id="live-announcer" class="visually-hidden" role="status" aria-live="polite" />
      <LiveSection view={view} now={props.now} />
      <h2>Request</h2>
      {request ? (
        <dl class="facts">
          {facts.map(([name, value]) => (
            <>
              <dt>{name}</dt>
              <dd>{String(value)}</dd>
            </>
          ))}
        </dl>
      ) : (
        <p>The request of this generation could not be read.</p>
      )}
      <p class="toolbar">
        {request ? (
          <a class="button primary" href={`${CONSOLE_BASE}/new?from=${encodeURIComponent(view.id)}`}>
            Use these settings
          </a>
        ) : null}
      </p>
    </Layout>
  );
}

/**
 * The part of a page that follows a running generation or batch: the console's script replaces it
 * from `data-live-src` until the status is final, and a screen reader hears `announce`.
 */
export function LiveRegion(props: {
  status: string;
  announce: string;
  live: { 'data-live-src'?: string };
  children?: unknown;
}) {
  return (
    <section
      id="live"
      aria-labelledby="live-heading"
      data-live-status={props.status}
      data-live-announce={props.announce}
      {...props.live}
    >
      <h2 id="live-heading" class="visually-hidden">
        Status
      </h2>
      {props.children}
    </section>
  );
}
