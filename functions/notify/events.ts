import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';

/** The `source` of every event this project publishes. */
export const EVENT_SOURCE = 'sd35.generation';

/** Event detail types, in and out (EventBridge `detail-type`). */
export const DETAIL_TYPE = {
  requested: 'Generation Requested',
  succeeded: 'Generation Succeeded',
  failed: 'Generation Failed',
  rejected: 'Generation Request Rejected',
} as const;

/** Where completion events go: EventBridge on AWS, a local sink on a developer's machine. */
export interface EventPublisher {
  publish(detailType: string, detail: Record<string, unknown>): Promise<void>;
}

/** Publishes to an EventBridge bus; a rejected entry is an error (the caller decides what it costs). */
export function createEventBridgePublisher(client: EventBridgeClient, busName: string): EventPublisher {
  return {
    async publish(detailType, detail) {
      const out = await client.send(
        new PutEventsCommand({
          Entries: [
            {
              EventBusName: busName,
              Source: EVENT_SOURCE,
              DetailType: detailType,
              Detail: JSON.stringify(detail),
            },
          ],
        }),
      );
      if (out.FailedEntryCount) {
        const entry = out.Entries?.[0];
        throw new Error(
          `EventBridge refused the event: ${entry?.ErrorCode ?? 'unknown'} ${entry?.ErrorMessage ?? ''}`.trim(),
        );
      }
    },
  };
}

export { EventBridgeClient };
