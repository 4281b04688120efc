import {
  DescribeExecutionCommand,
  ExecutionAlreadyExists,
  ExecutionDoesNotExist,
  type SFNClient,
  StartExecutionCommand,
  StopExecutionCommand,
} from '@aws-sdk/client-sfn';
import {
  ExecutionAlreadyExistsError,
  type ExecutionRecord,
  type ExecutionService,
  type ExecutionStatus,
} from '../execution-service.js';

/** The Step Functions adapter of {@link ExecutionService}. */
export function createSfnExecutionService(sfn: SFNClient, stateMachineArn: string): ExecutionService {
  const executionArn = (name: string) =>
    `${stateMachineArn.replace(':stateMachine:', ':execution:')}:${name}`;

  return {
    async start(name, input) {
      try {
        const out = await sfn.send(
          new StartExecutionCommand({ stateMachineArn, name, input: JSON.stringify(input) }),
        );
        return { startDate: out.startDate ?? new Date() };
      } catch (error) {
        if (error instanceof ExecutionAlreadyExists) throw new ExecutionAlreadyExistsError(error.message);
        throw error;
      }
    },

    async describe(name): Promise<ExecutionRecord | undefined> {
      try {
        const out = await sfn.send(new DescribeExecutionCommand({ executionArn: executionArn(name) }));
        return {
          name,
          status: (out.status ?? 'RUNNING') as ExecutionStatus,
          startDate: out.startDate ?? new Date(0),
          stopDate: out.stopDate,
          input: parseJson(out.input),
          output: parseJson(out.output),
          error: out.error,
          cause: out.cause,
        };
      } catch (error) {
        if (error instanceof ExecutionDoesNotExist) return undefined;
        throw error;
      }
    },

    async stop(name, reason) {
      try {
        await sfn.send(new StopExecutionCommand({ executionArn: executionArn(name), ...reason }));
      } catch (error) {
        if (error instanceof ExecutionDoesNotExist) return;
        throw error;
      }
    },
  };
}

function parseJson(text: string | undefined): unknown {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
