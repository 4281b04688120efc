import {
  DescribeExecutionCommand,
  ExecutionAlreadyExists,
  ExecutionDoesNotExist,
  GetExecutionHistoryCommand,
  InvalidToken,
  ListExecutionsCommand,
  type SFNClient,
  StartExecutionCommand,
  StopExecutionCommand,
} from '@aws-sdk/client-sfn';
import { STATE_NAMES } from '../shared/state-names.js';
import { type TaskState, taskStateSchema } from '../shared/workflow-state.js';
import {
  ExecutionAlreadyExistsError,
  type ExecutionRecord,
  type ExecutionService,
  type ExecutionStatus,
  InvalidPageTokenError,
} from './execution-service.js';

/** History events read back to find the last poll: a loop is about 9 events, so 50 reach it. */
const HISTORY_WINDOW = 50;

/** The Step Functions adapter of {@link ExecutionService}. */
export function createSfnExecutionService(sfn: SFNClient, stateMachineArn: string): ExecutionService {
  const executionArn = (name: string) =>
    `${stateMachineArn.replace(':stateMachine:', ':execution:')}:${name}`;

  return {
    async start(name, input) {
      try {
        await sfn.send(new StartExecutionCommand({ stateMachineArn, name, input: JSON.stringify(input) }));
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

    async lastTaskState(name): Promise<TaskState | undefined> {
      const history = await sfn.send(
        new GetExecutionHistoryCommand({
          executionArn: executionArn(name),
          reverseOrder: true,
          maxResults: HISTORY_WINDOW,
          includeExecutionData: true,
        }),
      );
      for (const event of history.events ?? []) {
        const exited = event.stateExitedEventDetails;
        if (event.type !== 'TaskStateExited' || !exited) continue;
        if (exited.name !== STATE_NAMES.submit && exited.name !== STATE_NAMES.poll) continue;
        const parsed = taskStateSchema.safeParse(
          (parseJson(exited.output) as { task?: unknown } | undefined)?.task,
        );
        if (parsed.success) return parsed.data;
      }
      return undefined;
    },

    async stop(name, reason) {
      try {
        await sfn.send(new StopExecutionCommand({ executionArn: executionArn(name), ...reason }));
      } catch (error) {
        if (error instanceof ExecutionDoesNotExist) return;
        throw error;
      }
    },

    async list({ status, limit, nextToken }) {
      const out = await sfn
        .send(
          new ListExecutionsCommand({ stateMachineArn, statusFilter: status, maxResults: limit, nextToken }),
        )
        .catch((error: unknown) => {
          throw error instanceof InvalidToken ? new InvalidPageTokenError(error.message) : error;
        });
      return {
        items: (out.executions ?? []).map((execution) => ({
          name: execution.name ?? '',
          status: (execution.status ?? 'RUNNING') as ExecutionStatus,
          startDate: execution.startDate ?? new Date(0),
          stopDate: execution.stopDate,
        })),
        nextToken: out.nextToken,
      };
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
