import { InvokeCommand, type LambdaClient } from '@aws-sdk/client-lambda';
import type { DispatchKick } from '../admission.js';

/**
 * The Lambda adapter of {@link DispatchKick}: an asynchronous invocation of the dispatcher (it
 * returns once Lambda queued it). The dispatcher's reserved concurrency of 1 runs one at a time;
 * kicks that arrive during a run wait in Lambda's queue, and each run re-reads the whole queue,
 * so extra kicks cost a few reads and nothing else.
 */
export function createLambdaKick(client: LambdaClient, functionName: string): DispatchKick {
  return async () => {
    await client.send(
      new InvokeCommand({ FunctionName: functionName, InvocationType: 'Event', Payload: '{}' }),
    );
  };
}
