import path from 'node:path';
import * as z from 'zod';
import { batchMetadataSchema } from '../../functions/shared/batch.js';
import { InvalidInputError, UsageError } from './errors.js';
import { parseSetting } from './settings.js';

/**
 * `sd35 batch create FILE`: the file and the flags as the body of `POST /v1/batches`. A `.jsonl`
 * (or `.ndjson`) file goes as it is, as NDJSON: its line numbers are the API's, and a line that
 * is not JSON is one rejected line, as in a request file. A `.json` file holds a list of
 * requests, `{"requests": [...]}` (with the batch's settings, if any) or one request.
 */

export const PRIORITIES = ['interactive', 'batch'] as const;

/** The batch-wide settings the flags give. */
export interface BatchSettings {
  readonly priority?: (typeof PRIORITIES)[number];
  readonly webhook_url?: string;
  readonly metadata?: Readonly<Record<string, string>>;
}

/** What `POST /v1/batches` is sent: NDJSON with its settings in the query, or one JSON document. */
export type BatchBody =
  | {
      readonly kind: 'ndjson';
      readonly content: string;
      readonly query: { readonly priority?: string; readonly webhook_url?: string };
    }
  | {
      readonly kind: 'json';
      readonly body: Record<string, unknown> & { readonly requests: unknown };
      /** Said on stderr before it is sent. */
      readonly warning?: string;
    };

const prioritySchema = z.enum(PRIORITIES, {
  error: (issue) => `must be "interactive" or "batch", got ${JSON.stringify(issue.input)}`,
});

/**
 * The settings of `--priority`, `--webhook-url` and each `--metadata key=value`.
 *
 * @throws UsageError naming the flag: a priority that is neither, metadata that is not `key=value`
 *   or breaks the API's limits (16 keys, keys up to 64 characters, values up to 512)
 */
export function batchSettingsOf(flags: {
  readonly priority?: string;
  readonly webhookUrl?: string;
  readonly metadata?: readonly string[];
}): BatchSettings {
  const priority =
    flags.priority === undefined
      ? undefined
      : parseSetting(prioritySchema, { value: flags.priority, from: '--priority' });
  let metadata: Record<string, string> | undefined;
  for (const pair of flags.metadata ?? []) {
    const at = pair.indexOf('=');
    if (at <= 0) throw new UsageError(`--metadata: needs key=value, got ${JSON.stringify(pair)}`);
    metadata ??= {};
    metadata[pair.slice(0, at)] = pair.slice(at + 1);
  }
  if (metadata) {
    const checked = batchMetadataSchema.safeParse(metadata);
    if (!checked.success) {
      const issue = checked.error.issues[0];
      // A key's own issue is inside the record's: "a key is at most 64 characters".
      const message =
        (issue?.code === 'invalid_key' ? issue.issues[0]?.message : undefined) ?? issue?.message;
      const key = issue?.path.length ? `${JSON.stringify(String(issue.path[0]))}: ` : '';
      throw new UsageError(`--metadata: ${key}${message ?? 'invalid'}`);
    }
  }
  return {
    ...(priority ? { priority } : {}),
    ...(flags.webhookUrl !== undefined ? { webhook_url: flags.webhookUrl } : {}),
    ...(metadata ? { metadata } : {}),
  };
}

/** Whether `file` is sent line by line (`.jsonl`, `.ndjson`) or as one document (`.json`). */
export function batchFileKind(file: string): 'lines' | 'document' {
  const extension = path.extname(file).toLowerCase();
  if (extension === '.jsonl' || extension === '.ndjson') return 'lines';
  if (extension === '.json') return 'document';
  throw new InvalidInputError(
    `${file}: needs a .jsonl file (one request per line) or a .json file (a list of requests)`,
  );
}

/**
 * The body of `POST /v1/batches` for `file`'s `text` and the flags' `settings` (which win over
 * the settings a `.json` file holds).
 *
 * @throws InvalidInputError naming the file when it is not what its extension says
 */
export function batchBodyOf(file: string, text: string, settings: BatchSettings): BatchBody {
  const content = text.replace(/^\uFEFF/, '');
  if (batchFileKind(file) === 'lines') {
    // NDJSON carries the priority and the webhook in the query, and no metadata: with metadata
    // the lines go as one JSON document.
    if (!settings.metadata) {
      const { priority, webhook_url } = settings;
      return { kind: 'ndjson', content, query: { priority, webhook_url } };
    }
    return linesAsDocument(file, content, settings);
  }
  let value: unknown;
  try {
    value = JSON.parse(content);
  } catch (error) {
    throw new InvalidInputError(`${file}: is not valid JSON (${(error as Error).message})`, { cause: error });
  }
  if (Array.isArray(value)) return { kind: 'json', body: { requests: value, ...settings } };
  if (!isObject(value))
    throw new InvalidInputError(
      `${file}: must hold a list of requests, {"requests": [...]}, or one request; got ${typeof value === 'string' ? 'a string' : JSON.stringify(value)}`,
    );
  if (!('requests' in value)) return { kind: 'json', body: { requests: [value], ...settings } };
  const metadata =
    settings.metadata && isObject(value.metadata)
      ? { ...value.metadata, ...settings.metadata }
      : (settings.metadata ?? value.metadata);
  return {
    kind: 'json',
    body: {
      ...value,
      ...settings,
      requests: value.requests,
      ...(metadata === undefined ? {} : { metadata }),
    },
  };
}

/** A `.jsonl` file's requests as the JSON form's list (which numbers them 1…N, blank lines left out). */
function linesAsDocument(file: string, content: string, settings: BatchSettings): BatchBody {
  const lines = content.split(/\r?\n/);
  const last = lines.findLastIndex((line) => line.trim() !== '');
  const requests: unknown[] = [];
  let blank = false;
  for (const [index, line] of lines.entries()) {
    if (line.trim() === '') {
      if (index < last) blank = true;
      continue;
    }
    try {
      requests.push(JSON.parse(line));
    } catch (error) {
      throw new InvalidInputError(
        `${file}: line ${index + 1} is not valid JSON (${(error as Error).message}); with --metadata the lines are sent as one JSON document, so each must be JSON`,
        { cause: error },
      );
    }
  }
  return {
    kind: 'json',
    body: { requests, ...settings },
    ...(blank
      ? {
          warning: `warning: ${file} has blank lines: with --metadata its requests are numbered 1 to ${requests.length}, blank lines left out`,
        }
      : {}),
  };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
