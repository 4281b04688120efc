import { appendFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { EVENT_SOURCE, type EventPublisher } from '../functions/shared/events.js';

export interface SinkEvent {
  readonly time: string;
  readonly source: string;
  readonly 'detail-type': string;
  readonly detail: Record<string, unknown>;
}

export interface LocalEventSink extends EventPublisher {
  /** Every event published by this process, oldest first. */
  readonly events: readonly SinkEvent[];
  /** The JSON-lines file events are appended to, if any. */
  readonly file?: string;
}

/**
 * Where completion events go locally: kept in memory and, when a file is given, appended to it as
 * one EventBridge-shaped JSON document per line (`tail -f .local/events.jsonl`).
 */
export function createLocalEventSink(file?: string): LocalEventSink {
  const events: SinkEvent[] = [];
  return {
    events,
    file,
    async publish(detailType, detail) {
      const event: SinkEvent = {
        time: new Date().toISOString(),
        source: EVENT_SOURCE,
        'detail-type': detailType,
        detail,
      };
      events.push(event);
      if (file) {
        await mkdir(path.dirname(file), { recursive: true });
        await appendFile(file, `${JSON.stringify(event)}\n`);
      }
    },
  };
}
