import { S3Client } from '@aws-sdk/client-s3';
import { loadConfig, type NotifyConfig } from '../shared/config.js';
import { createLambdaLogger, type Logger } from '../shared/logger.js';
import { parseEvent } from '../shared/parse-event.js';
import { secretProvider } from '../shared/secret.js';
import { createEventBridgePublisher, EventBridgeClient, type EventPublisher } from './events.js';
import { type NotifyDeps, type NotifyResult, notifyCompletion, notifyInputSchema } from './notify.js';
import type { WebhookPolicy } from './webhook.js';

export interface NotifyRuntime {
  readonly logger: Logger;
  readonly s3: S3Client;
  readonly events: EventPublisher;
  /** Deployed: https to public addresses only (the default). */
  readonly webhookPolicy?: WebhookPolicy;
  readonly webhookTiming?: NotifyDeps['webhookTiming'];
}

/** Wires the notifier from configuration and a runtime (AWS or local). */
export function notifyDeps(config: NotifyConfig, runtime: NotifyRuntime): NotifyDeps {
  return {
    events: runtime.events,
    s3: runtime.s3,
    bucket: config.BUCKET_NAME,
    logger: runtime.logger,
    webhookSecret: secretProvider('webhook signing secret', config.WEBHOOK_SECRET_ID, config.WEBHOOK_SECRET),
    webhookPolicy: runtime.webhookPolicy ?? {},
    webhookTiming: runtime.webhookTiming,
  };
}

/** The Notify states' handler over explicit dependencies (the local runner uses this too). */
export function createNotifyHandler(deps: NotifyDeps): (event: unknown) => Promise<NotifyResult> {
  return (event) => notifyCompletion(parseEvent(notifyInputSchema, event), deps);
}

let lambdaHandler: ((event: unknown) => Promise<NotifyResult>) | undefined;

/** Lambda entry: dependencies are built from the environment on the first call, once per container. */
export const handler = (event: unknown): Promise<NotifyResult> => {
  lambdaHandler ??= (() => {
    const config = loadConfig('notify', process.env);
    return createNotifyHandler(
      notifyDeps(config, {
        logger: createLambdaLogger('notify'),
        s3: new S3Client({}),
        events: createEventBridgePublisher(new EventBridgeClient({}), config.EVENT_BUS_NAME),
      }),
    );
  })();
  return lambdaHandler(event);
};
