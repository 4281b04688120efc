import { createS3ObjectStore } from '../functions/shared/aws/s3-object-store.js';
import { describeError } from '../functions/shared/errors.js';
import type { Logger } from '../functions/shared/logger.js';
import { isRequestFileKey } from '../functions/shared/request-keys.js';
import { createTriggerHandler, triggerDeps } from '../functions/trigger/handler.js';
import { triggerSpec } from '../functions/trigger/spec.js';
import type { ObjectCreatedEvent } from '../functions/trigger/trigger.js';
import type { LocalPipeline } from './pipeline.js';
import { objectCreatedEvent } from './request-file-drop.js';
import type { LocalS3 } from './s3.js';

export interface RequestFileWatchOptions {
  /** The local S3 whose bucket is watched. */
  readonly s3: Pick<LocalS3, 'onObjectCreated'>;
  /** The trigger Lambda's code (`createTriggerHandler(deps)`), given each request file's event. */
  readonly trigger: (event: ObjectCreatedEvent) => Promise<unknown>;
  /** Where a failed delivery is reported. */
  readonly logger: Logger;
}

export interface RequestFileWatch {
  /** Stops watching, then waits for the deliveries already under way (and those queued behind them). */
  close(): Promise<void>;
}

/**
 * Does locally what S3 and EventBridge do on AWS for a request file: every object created under
 * `requests/` whose key the trigger reads (`isRequestFileKey`: `.json`, `.jsonl`, so never the
 * `.result` report the trigger writes) is handed to `trigger` as the "Object Created" event
 * EventBridge delivers (the one `dropRequestFile` builds).
 *
 * Deliveries of one key run one at a time, in the order the objects were stored; other keys run
 * alongside. A delivery that fails is logged (`error`, with the key and ETag) and nothing else:
 * there is no Lambda retry or dead-letter queue here, and the next delivery runs as usual.
 */
export function watchRequestFiles(options: RequestFileWatchOptions): RequestFileWatch {
  const { trigger, logger } = options;
  /** The last delivery queued for each key; removed when it has run and none was queued behind it. */
  const tails = new Map<string, Promise<void>>();

  const deliver = async (event: ObjectCreatedEvent): Promise<void> => {
    const { key, etag } = event.detail.object;
    try {
      await trigger(event);
    } catch (error) {
      logger.error('Request file trigger failed', { key, etag, reason: describeError(error) });
    }
  };

  const unsubscribe = options.s3.onObjectCreated((object) => {
    if (!isRequestFileKey(object.key)) return;
    const event = objectCreatedEvent(object);
    const tail = (tails.get(object.key) ?? Promise.resolve()).then(() => deliver(event));
    tails.set(object.key, tail);
    void tail.then(() => {
      if (tails.get(object.key) === tail) tails.delete(object.key);
    });
  });

  let closed: Promise<void> | undefined;
  return {
    close() {
      closed ??= (async () => {
        unsubscribe();
        await Promise.all(tails.values());
      })();
      return closed;
    },
  };
}

/**
 * {@link watchRequestFiles} over a pipeline: the trigger as the stack deploys it (its synthesized
 * environment), over the pipeline's S3, executions, index and batches. What the engine's owner
 * and the tests' local API both run, so a file (or a batch the API wrote) starts as on AWS.
 */
export function watchPipelineRequestFiles(pipeline: LocalPipeline, logger: Logger): RequestFileWatch {
  return watchRequestFiles({
    s3: pipeline.s3,
    trigger: createTriggerHandler(
      triggerDeps(triggerSpec.parse(pipeline.runner.environment('trigger')), {
        objects: createS3ObjectStore(pipeline.s3.client),
        executions: pipeline.executions,
        index: pipeline.index,
        batches: pipeline.batches,
        clock: pipeline.clock,
        events: pipeline.events,
        logger,
      }),
    ),
    logger,
  });
}
