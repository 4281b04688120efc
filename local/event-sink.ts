import { appendFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { EVENT_SOURCE, type EventPublisher } from '../functions/shared/events.js';

export interface SinkEvent {
  readonly time: string;
  readonly source: string;
  readonly 'detail-type': string;
  readonly detail: Record<string, unknown>;
}

/** How many of the latest events a sink keeps in memory (the file keeps them all). */
export const EVENTS_KEPT_IN_MEMORY = 1000;

export interface LocalEventSink extends EventPublisher {
  /** The latest events published by this process (at most {@link EVENTS_KEPT_IN_MEMORY}), oldest first. */
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
      // A long-running server publishes for ever; the file is the record.
      if (events.length > EVENTS_KEPT_IN_MEMORY) events.splice(0, events.length - EVENTS_KEPT_IN_MEMORY);
      if (file) {
        await mkdir(path.dirname(file), { recursive: true });
        await appendFile(file, `${JSON.stringify(event)}\n`);
      }
    },
  };
}
