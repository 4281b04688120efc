import type { BatchCounts, BatchStatus } from '../../shared/batch.js';
import type { GenerationStatus } from '../../shared/workflow-state.js';
import type { BatchView } from '../batches.js';
import type { GenerationView } from '../schemas.js';
import {
  CONSOLE_BASE,
  excerpt,
  GalleryCard,
  Layout,
  LiveRegion,
  pageOf,
  Soon,
  StatusBadge,
  When,
} from './views.js';

export const batchesPath = `${CONSOLE_BASE}/batches`;
export const batchPageOf = (id: string) => `${batchesPath}/${encodeURIComponent(id)}`;

/** Whether a batch may still change (and can be cancelled). */
export const isBatchActive = (status: BatchStatus) => status === 'in_progress' || status === 'cancelling';

/** The lines that have ended, rejected ones included: what the progress bar fills. */
export const linesDone = (counts: BatchCounts) => Math.max(0, counts.total - counts.waiting - counts.running);

const STATUS_NAMES: Readonly<Record<BatchStatus, string>> = {
  in_progress: 'in progress',
  completed: 'completed',
  cancelling: 'cancelling',
  cancelled: 'cancelled',
};

/** How a batch came, as people name it (a source this console does not know is shown as it is). */
const SOURCE_NAMES: Readonly<Record<string, string>> = {
  api: 'API',
  cli: 'CLI',
  console: 'console',
  'request-file': 'request file',
  local: 'npm run generate',
  event: 'event',
};

/** Each count, in the order the pages show them. */
const COUNT_ORDER = ['succeeded', 'partial', 'failed', 'canceled', 'rejected', 'running', 'waiting'] as const;

/** A failed or canceled generation of a batch, with why. */
export interface FailedLine {
  readonly line: number;
  readonly id: string;
  readonly status: GenerationStatus;
  readonly error?: { readonly type: string; readonly message: string };
}

/** A line the batch refused before it became a generation, as `rejected.json` keeps it. */
export interface RejectedLine {
  readonly line: number;
  readonly error: { readonly type: string; readonly message: string };
}

export function BatchBadge({ status }: { status: BatchStatus }) {
  return <span class={`badge ${status}`}>{STATUS_NAMES[status]}</span>;
}

/** One line on where a batch stands, for the page and for screen readers. */
export function batchProgressLine(batch: BatchView): string {
  const name = STATUS_NAMES[batch.status];
  const { total } = batch.counts;
  return `${name[0]?.toUpperCase()}${name.slice(1)}: ${linesDone(batch.counts)} of ${total} line${total === 1 ? '' : 's'} done`;
}

/** The counts that are not zero: "8 succeeded · 2 failed · 3 waiting". */
export function countsText(counts: BatchCounts): string {
  const parts = COUNT_ORDER.filter((key) => counts[key] > 0).map((key) => `${counts[key]} ${key}`);
  return parts.length > 0 ? parts.join(' · ') : 'nothing counted yet';
}

function Source({ batch }: { batch: BatchView }) {
  const name = SOURCE_NAMES[batch.source] ?? batch.source;
  if (!batch.file) return <span>{name}</span>;
  return (
    <span>
      {name} <code>{batch.file.key}</code>
    </span>
  );
}

function Progress({ batch }: { batch: BatchView }) {
  return (
    <progress
      max={String(Math.max(batch.counts.total, 1))}
      value={String(linesDone(batch.counts))}
      aria-label="Lines done"
    />
  );
}

/** When it is expected to end while it runs, or when it ended. */
function EndLine({ batch, now }: { batch: BatchView; now: number }) {
  if (batch.completedAt) {
    return (
      <>
        Ended <When iso={batch.completedAt} />
      </>
    );
  }
  if (batch.estimatedCompletionAt && isBatchActive(batch.status)) {
    return (
      <>
        Expected to end <Soon iso={batch.estimatedCompletionAt} now={now} />
      </>
    );
  }
  return null;
}

/** A batch in the list; one still in progress is followed live. */
export function BatchRow({ batch, now }: { batch: BatchView; now: number }) {
  const live = isBatchActive(batch.status) ? { 'data-live-src': `${batchPageOf(batch.id)}/row` } : {};
  const metadata = Object.entries(batch.metadata ?? {}).slice(0, 3);
  return (
    <li class="batch" data-live-status={batch.status} {...live}>
      <p class="head">
        <a href={batchPageOf(batch.id)}>
          <code>{batch.id}</code>
        </a>
        <BatchBadge status={batch.status} />
        <span class="meta">
          from <Source batch={batch} />
        </span>
      </p>
      <p class="status-line">
        <Progress batch={batch} />
        <span>{batchProgressLine(batch)}</span>
      </p>
      <p class="meta">{countsText(batch.counts)}</p>
      {metadata.length > 0 ? (
        <p class="meta">{metadata.map(([key, value]) => `${key}: ${excerpt(value, 60)}`).join(' · ')}</p>
      ) : null}
      <p class="meta">
        Created <When iso={batch.createdAt} />
        {batch.completedAt || batch.estimatedCompletionAt ? ' · ' : ''}
        <EndLine batch={batch} now={now} />
      </p>
    </li>
  );
}

export function BatchesPage(props: {
  items: readonly BatchView[];
  nextCursor?: string;
  paged: boolean;
  signedIn: boolean;
  now: number;
}) {
  return (
    <Layout title="Batches" signedIn={props.signedIn}>
      <h1>Batches</h1>
      {props.items.length === 0 ? (
        <p>
          No batches yet. Send one with <code>POST /v1/batches</code>, or put a request file under{' '}
          <code>requests/</code>.
        </p>
      ) : (
        <ul class="batches" aria-label="Batches, newest first">
          {props.items.map((batch) => (
            <BatchRow batch={batch} now={props.now} />
          ))}
        </ul>
      )}
      <nav class="pager" aria-label="Pages">
        {props.paged ? <a href={batchesPath}>Newest</a> : null}
        {props.nextCursor ? (
          <a rel="next" href={`${batchesPath}?${new URLSearchParams({ cursor: props.nextCursor })}`}>
            Older
          </a>
        ) : null}
      </nav>
    </Layout>
  );
}

/** What a batch's page shows that changes while it runs. */
export interface BatchLiveProps {
  readonly batch: BatchView;
  readonly now: number;
  /** One page of its generations, in line order, with their image links. */
  readonly items: readonly GenerationView[];
  /** The page's cursor (none: the first lines), and the next page's. */
  readonly cursor?: string;
  readonly nextCursor?: string;
  /** Its failed and canceled generations, the first of them; `more` when there are others. */
  readonly failures: { readonly lines: readonly FailedLine[]; readonly more: boolean };
  /** A presigned link to its results, once it ended. */
  readonly resultsUrl?: string;
  /** What the section shows, digested: the live fragment answers 204 while it is the same. */
  readonly signature: string;
}

/**
 * The part of a batch's page that changes while it runs: progress, counts, the estimate, cancel
 * or the results, the failures and a page of its generations. The script swaps it for a fresh
 * copy (answered only when something in it changed) until the batch ends.
 */
export function BatchLiveSection(props: BatchLiveProps) {
  const { batch, now, failures } = props;
  const line = batchProgressLine(batch);
  const here = batchPageOf(batch.id);
  const liveQuery = new URLSearchParams({
    ...(props.cursor ? { cursor: props.cursor } : {}),
    seen: props.signature,
  });
  const live = isBatchActive(batch.status) ? { 'data-live-src': `${here}/live?${liveQuery}` } : {};
  const pageQuery = (cursor: string) => `${here}?${new URLSearchParams({ cursor })}`;
  return (
    <LiveRegion status={batch.status} announce={line} live={live}>
      <div class="status-line">
        <BatchBadge status={batch.status} />
        <span>{line}</span>
        <Progress batch={batch} />
        {batch.status === 'in_progress' ? (
          <form method="post" action={`${here}/cancel`}>
            <button type="submit" class="danger">
              Cancel batch
            </button>
          </form>
        ) : null}
      </div>
      <p>
        {countsText(batch.counts)}
        {batch.completedAt || (batch.estimatedCompletionAt && isBatchActive(batch.status)) ? '. ' : ''}
        <EndLine batch={batch} now={now} />
      </p>
      {props.resultsUrl ? (
        <p>
          <a class="button primary" href={props.resultsUrl} download={`${batch.id}-results.jsonl`}>
            Download results
          </a>{' '}
          <span class="meta">(JSON Lines, one line per request; the link lasts an hour)</span>
        </p>
      ) : null}
      {failures.lines.length > 0 ? (
        <div class="problem">
          <h2>Failed lines</h2>
          <ul class="lines">
            {failures.lines.map((failed) => (
              <li>
                <a href={pageOf(failed.id)}>Line {failed.line}</a>: <StatusBadge status={failed.status} />{' '}
                {failed.error ? (
                  <>
                    <strong>{failed.error.type}</strong>: {failed.error.message}
                  </>
                ) : (
                  'canceled before it ended'
                )}
              </li>
            ))}
          </ul>
          {failures.more ? (
            <p class="meta">More failed lines than these: the results list them all.</p>
          ) : null}
        </div>
      ) : null}
      <h2>Generations</h2>
      {props.items.length === 0 ? (
        <p>{props.cursor ? 'No more generations.' : 'No generation of this batch has started yet.'}</p>
      ) : (
        <ul class="gallery" aria-label="Its generations, in line order">
          {props.items.map((view) => (
            <GalleryCard view={view} follow={false} />
          ))}
        </ul>
      )}
      <nav class="pager" aria-label="Pages of generations">
        {props.cursor ? <a href={here}>First lines</a> : null}
        {props.nextCursor ? (
          <a rel="next" href={pageQuery(props.nextCursor)}>
            Next lines
          </a>
        ) : null}
      </nav>
    </LiveRegion>
  );
}

/** A rejected line's reason without the "line 3: " it starts with (the list says the line). */
const withoutLinePrefix = ({ line, error }: RejectedLine) =>
  error.message.startsWith(`line ${line}: `) ? error.message.slice(`line ${line}: `.length) : error.message;

export function BatchPage(
  props: BatchLiveProps & {
    /** The lines it refused; `unreadable` when `rejected.json` could not be read. */
    readonly rejected: {
      readonly lines: readonly RejectedLine[];
      readonly more: boolean;
      readonly unreadable: boolean;
    };
    readonly signedIn: boolean;
  },
) {
  const { batch, rejected } = props;
  const metadata = Object.entries(batch.metadata ?? {});
  return (
    <Layout title={`Batch ${batch.id}`} signedIn={props.signedIn}>
      <h1>
        Batch <code>{batch.id}</code>
      </h1>
      <p id="live-announcer" class="visually-hidden" role="status" aria-live="polite" />
      <BatchLiveSection {...props} />
      {batch.counts.rejected > 0 ? (
        <div class="problem">
          <h2>Rejected lines</h2>
          {rejected.unreadable ? (
            <p>
              {batch.counts.rejected} line{batch.counts.rejected === 1 ? ' was' : 's were'} rejected, but why
              could not be read; the results list them.
            </p>
          ) : (
            <ul class="lines">
              {rejected.lines.map((entry) => (
                <li>
                  Line {entry.line}: <strong>{entry.error.type}</strong>: {withoutLinePrefix(entry)}
                </li>
              ))}
            </ul>
          )}
          {rejected.more ? (
            <p class="meta">More rejected lines than these: the results list them all.</p>
          ) : null}
        </div>
      ) : null}
      <h2>Batch</h2>
      <dl class="facts">
        <dt>Source</dt>
        <dd>
          <Source batch={batch} />
        </dd>
        <dt>Priority</dt>
        <dd>{batch.priority}</dd>
        <dt>Created</dt>
        <dd>
          <When iso={batch.createdAt} />
        </dd>
      </dl>
      {metadata.length > 0 ? (
        <>
          <h2>Metadata</h2>
          <dl class="facts">
            {metadata.map(([key, value]) => (
              <>
                <dt>{key}</dt>
                <dd>{value}</dd>
              </>
            ))}
          </dl>
        </>
      ) : null}
    </Layout>
  );
}
