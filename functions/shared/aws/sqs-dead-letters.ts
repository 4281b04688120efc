import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { AnnouncementDeadLetters } from '../events.js';

/**
 * Puts announcements in an SQS queue (the stack's announcements dead-letter queue): the body is
 * the announcement as JSON; `kind`, `generationId` and `eventId` are also message attributes, so
 * `aws sqs receive-message --message-attribute-names All` shows what each message is.
 */
export function createSqsDeadLetters(client: SQSClient, queueUrl: string): AnnouncementDeadLetters {
  return {
    async send(announcement) {
      const text = (value: string) => ({ DataType: 'String', StringValue: value });
      await client.send(
        new SendMessageCommand({
          QueueUrl: queueUrl,
          MessageBody: JSON.stringify(announcement),
          MessageAttributes: {
            kind: text(announcement.kind),
            generationId: text(announcement.generationId),
            eventId: text(announcement.eventId),
          },
        }),
      );
    },
  };
}
