import { InvokeCommand, type LambdaClient } from '@aws-sdk/client-lambda';
import type { DispatchKick } from '../admission.js';

/**
 * The Lambda adapter of {@link DispatchKick}: an asynchronous invocation of the dispatcher (it
 * returns once Lambda queued it). A kick that arrives during a run finds the dispatcher's lease
 * taken, leaves a request on it and returns: the holder runs once more. Each run re-reads the
 * whole queue, so extra kicks cost a few reads and writes and nothing else.
 */
export function createLambdaKick(client: LambdaClient, functionName: string): DispatchKick {
  return async () => {
    await client.send(
      new InvokeCommand({ FunctionName: functionName, InvocationType: 'Event', Payload: '{}' }),
    );
  };
}
