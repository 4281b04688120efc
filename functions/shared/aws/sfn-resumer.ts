import {
  InvalidToken,
  SendTaskFailureCommand,
  SendTaskSuccessCommand,
  type SFNClient,
  TaskDoesNotExist,
  TaskTimedOut,
} from '@aws-sdk/client-sfn';
import type { ExecutionResumer } from '../admission.js';

/** Step Functions' answers that mean nothing waits on the token any more. */
const gone = (error: unknown) =>
  error instanceof TaskTimedOut || error instanceof TaskDoesNotExist || error instanceof InvalidToken;

/**
 * The Step Functions adapter of {@link ExecutionResumer}: SendTaskSuccess resumes the execution
 * paused in the Admit state with the grant as the state's result; SendTaskFailure ends that state
 * with a named error. A token whose task ended (stopped, timed out, answered) is `gone`.
 */
export function createSfnResumer(client: SFNClient): ExecutionResumer {
  return {
    async resume(token, grant) {
      try {
        await client.send(new SendTaskSuccessCommand({ taskToken: token, output: JSON.stringify(grant) }));
        return 'resumed';
      } catch (error) {
        if (gone(error)) return 'gone';
        throw error;
      }
    },
    async fail(token, error, cause) {
      try {
        await client.send(new SendTaskFailureCommand({ taskToken: token, error, cause }));
        return 'failed';
      } catch (failure) {
        if (gone(failure)) return 'gone';
        throw failure;
      }
    },
  };
}
