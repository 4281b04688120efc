import {
  DescribeExecutionCommand,
  ExecutionAlreadyExists,
  ExecutionDoesNotExist,
  GetExecutionHistoryCommand,
  type HistoryEvent,
  InvalidToken,
  ListExecutionsCommand,
  SFNClient,
  StartExecutionCommand,
  StopExecutionCommand,
} from '@aws-sdk/client-sfn';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { ExecutionAlreadyExistsError, InvalidPageTokenError } from '../../functions/api/execution-service.js';
import { createSfnExecutionService } from '../../functions/api/sfn-execution-service.js';
import type { TaskState } from '../../functions/shared/workflow-state.js';

const STATE_MACHINE_ARN = 'arn:aws:states:eu-west-1:123456789012:stateMachine:Sd35Generations';
const EXECUTION_ARN = 'arn:aws:states:eu-west-1:123456789012:execution:Sd35Generations:gen-1';

const sfnMock = mockClient(SFNClient);
const service = createSfnExecutionService(new SFNClient({ region: 'eu-west-1' }), STATE_MACHINE_ARN);

beforeEach(() => {
  sfnMock.reset();
});

function taskState(overrides: Partial<TaskState> = {}): TaskState {
  return {
    taskId: 'task-1',
    seed: 42,
    submitRequestId: 'req-submit',
    submittedAt: '2026-03-01T12:00:01.000Z',
    deadline: '2026-03-01T12:30:00.000Z',
    status: 'running',
    dashscopeStatus: 'RUNNING',
    times: { submit: '2026-03-01T12:00:01.000Z' },
    pollCount: 1,
    nextPollSeconds: 1,
    deadlineExceeded: false,
    ...overrides,
  };
}

let eventId = 100;
function exited(name: string, output: unknown, type: HistoryEvent['type'] = 'TaskStateExited'): HistoryEvent {
  eventId -= 1;
  return {
    id: eventId,
    timestamp: new Date('2026-03-01T12:00:00Z'),
    type,
    stateExitedEventDetails: { name, output: JSON.stringify(output) },
  };
}

describe('createSfnExecutionService start', () => {
  it('starts an execution of the state machine with the name and the input as JSON', async () => {
    // Prepare
    sfnMock.on(StartExecutionCommand).resolves({ executionArn: EXECUTION_ARN, startDate: new Date() });

    // Act
    await service.start('gen-1', { prompt: 'a lighthouse', n: 2 });

    // Assess
    const calls = sfnMock.commandCalls(StartExecutionCommand);
    expect(calls.map((call) => call.args[0].input)).toEqual([
      { stateMachineArn: STATE_MACHINE_ARN, name: 'gen-1', input: '{"prompt":"a lighthouse","n":2}' },
    ]);
  });

  it('throws ExecutionAlreadyExistsError when the name is taken', async () => {
    // Prepare
    sfnMock
      .on(StartExecutionCommand)
      .rejects(new ExecutionAlreadyExists({ message: 'Execution Already Exists', $metadata: {} }));

    // Act
    const started = service.start('gen-1', { prompt: 'a lighthouse' });

    // Assess
    await expect(started).rejects.toBeInstanceOf(ExecutionAlreadyExistsError);
  });

  it('lets other errors through', async () => {
    // Prepare
    const throttled = new Error('Rate exceeded');
    sfnMock.on(StartExecutionCommand).rejects(throttled);

    // Act
    const started = service.start('gen-1', { prompt: 'a lighthouse' });

    // Assess
    await expect(started).rejects.toBe(throttled);
  });
});

describe('createSfnExecutionService describe', () => {
  it('derives the execution ARN from the state machine ARN and the name', async () => {
    // Prepare
    sfnMock.on(DescribeExecutionCommand).resolves({});

    // Act
    await service.describe('gen-1');

    // Assess
    expect(sfnMock.commandCalls(DescribeExecutionCommand)[0]?.args[0].input).toEqual({
      executionArn: EXECUTION_ARN,
    });
  });

  it('maps a running execution, its input parsed', async () => {
    // Prepare
    sfnMock.on(DescribeExecutionCommand).resolves({
      executionArn: EXECUTION_ARN,
      stateMachineArn: STATE_MACHINE_ARN,
      name: 'gen-1',
      status: 'RUNNING',
      startDate: new Date('2026-03-01T12:00:00Z'),
      input: '{"prompt":"a lighthouse","n":2}',
    });

    // Act
    const record = await service.describe('gen-1');

    // Assess
    expect(record).toEqual({
      name: 'gen-1',
      status: 'RUNNING',
      startDate: new Date('2026-03-01T12:00:00Z'),
      stopDate: undefined,
      input: { prompt: 'a lighthouse', n: 2 },
      output: undefined,
      error: undefined,
      cause: undefined,
    });
  });

  it('maps a succeeded execution: output parsed, stop date', async () => {
    // Prepare
    sfnMock.on(DescribeExecutionCommand).resolves({
      status: 'SUCCEEDED',
      startDate: new Date('2026-03-01T12:00:00Z'),
      stopDate: new Date('2026-03-01T12:01:00Z'),
      input: '{"prompt":"a lighthouse"}',
      output: '{"result":{"manifestKey":"generations/gen-1/manifest.json"}}',
    });

    // Act
    const record = await service.describe('gen-1');

    // Assess
    expect(record).toMatchObject({
      status: 'SUCCEEDED',
      stopDate: new Date('2026-03-01T12:01:00Z'),
      output: { result: { manifestKey: 'generations/gen-1/manifest.json' } },
    });
  });

  it('maps a failed execution with its error and cause', async () => {
    // Prepare
    sfnMock.on(DescribeExecutionCommand).resolves({
      status: 'FAILED',
      startDate: new Date('2026-03-01T12:00:00Z'),
      stopDate: new Date('2026-03-01T12:00:05Z'),
      input: '{"prompt":"a lighthouse"}',
      error: 'ContentPolicyError',
      cause: '{"errorType":"ContentPolicyError","errorMessage":"HTTP 400 DataInspectionFailed"}',
    });

    // Act
    const record = await service.describe('gen-1');

    // Assess
    expect(record).toMatchObject({
      status: 'FAILED',
      error: 'ContentPolicyError',
      cause: '{"errorType":"ContentPolicyError","errorMessage":"HTTP 400 DataInspectionFailed"}',
    });
  });

  it('returns undefined for an execution that does not exist', async () => {
    // Prepare
    sfnMock
      .on(DescribeExecutionCommand)
      .rejects(new ExecutionDoesNotExist({ message: 'Execution Does Not Exist', $metadata: {} }));

    // Act
    const record = await service.describe('gen-unknown');

    // Assess
    expect(record).toBeUndefined();
  });

  it('lets other errors through', async () => {
    // Prepare
    const denied = new Error('AccessDenied');
    sfnMock.on(DescribeExecutionCommand).rejects(denied);

    // Act
    const described = service.describe('gen-1');

    // Assess
    await expect(described).rejects.toBe(denied);
  });
});

describe('createSfnExecutionService lastTaskState', () => {
  it('reads the newest history events with their data', async () => {
    // Prepare
    sfnMock.on(GetExecutionHistoryCommand).resolves({ events: [] });

    // Act
    await service.lastTaskState('gen-1');

    // Assess
    expect(sfnMock.commandCalls(GetExecutionHistoryCommand)[0]?.args[0].input).toMatchObject({
      executionArn: EXECUTION_ARN,
      reverseOrder: true,
      includeExecutionData: true,
    });
  });

  it('returns the task of the latest Poll', async () => {
    // Prepare
    sfnMock.on(GetExecutionHistoryCommand).resolves({
      events: [
        exited('Poll', { task: taskState({ pollCount: 3 }) }),
        exited('Poll', { task: taskState({ pollCount: 2 }) }),
        exited('Submit', { task: taskState({ pollCount: 0, status: 'queued' }) }),
      ],
    });

    // Act
    const task = await service.lastTaskState('gen-1');

    // Assess
    expect(task).toEqual(taskState({ pollCount: 3 }));
  });

  it('returns the task of Submit before any Poll', async () => {
    // Prepare
    sfnMock.on(GetExecutionHistoryCommand).resolves({
      events: [exited('Submit', { task: taskState({ pollCount: 0, status: 'queued' }) })],
    });

    // Act
    const task = await service.lastTaskState('gen-1');

    // Assess
    expect(task).toEqual(taskState({ pollCount: 0, status: 'queued' }));
  });

  it('skips the exits of other states, Persist and Check status', async () => {
    // Prepare
    sfnMock.on(GetExecutionHistoryCommand).resolves({
      events: [
        exited('Persist', { task: taskState({ pollCount: 9 }) }),
        exited('Check status', { task: taskState({ pollCount: 8 }) }, 'ChoiceStateExited'),
        exited('Check status', { task: taskState({ pollCount: 7 }) }),
        exited('Poll', { task: taskState({ pollCount: 5 }) }),
      ],
    });

    // Act
    const task = await service.lastTaskState('gen-1');

    // Assess
    expect(task?.pollCount).toBe(5);
  });

  it('skips events of other types', async () => {
    // Prepare
    sfnMock.on(GetExecutionHistoryCommand).resolves({
      events: [
        {
          id: 9,
          timestamp: new Date(),
          type: 'TaskStateEntered',
          stateEnteredEventDetails: {
            name: 'Poll',
            input: JSON.stringify({ task: taskState({ pollCount: 9 }) }),
          },
        },
        exited('Poll', { task: taskState({ pollCount: 4 }) }),
      ],
    });

    // Act
    const task = await service.lastTaskState('gen-1');

    // Assess
    expect(task?.pollCount).toBe(4);
  });

  it('returns undefined when neither Submit nor Poll has exited', async () => {
    // Prepare
    sfnMock.on(GetExecutionHistoryCommand).resolves({
      events: [
        exited('Init', { id: 'gen-1' }, 'PassStateExited'),
        { id: 1, timestamp: new Date(), type: 'ExecutionStarted' },
      ],
    });

    // Act
    const task = await service.lastTaskState('gen-1');

    // Assess
    expect(task).toBeUndefined();
  });

  it('returns undefined for a history without events', async () => {
    // Prepare
    sfnMock.on(GetExecutionHistoryCommand).resolves({});

    // Act
    const task = await service.lastTaskState('gen-1');

    // Assess
    expect(task).toBeUndefined();
  });
});

describe('createSfnExecutionService stop', () => {
  it('stops the execution with the error and cause', async () => {
    // Prepare
    sfnMock.on(StopExecutionCommand).resolves({ stopDate: new Date() });

    // Act
    await service.stop('gen-1', { error: 'DashScopeTaskCanceled', cause: 'Canceled through the API' });

    // Assess
    expect(sfnMock.commandCalls(StopExecutionCommand)[0]?.args[0].input).toEqual({
      executionArn: EXECUTION_ARN,
      error: 'DashScopeTaskCanceled',
      cause: 'Canceled through the API',
    });
  });

  it('ignores an execution that does not exist', async () => {
    // Prepare
    sfnMock
      .on(StopExecutionCommand)
      .rejects(new ExecutionDoesNotExist({ message: 'Execution Does Not Exist', $metadata: {} }));

    // Act
    const stopped = service.stop('gen-unknown', { error: 'DashScopeTaskCanceled', cause: 'x' });

    // Assess
    await expect(stopped).resolves.toBeUndefined();
  });

  it('lets other errors through', async () => {
    // Prepare
    const denied = new Error('AccessDenied');
    sfnMock.on(StopExecutionCommand).rejects(denied);

    // Act
    const stopped = service.stop('gen-1', { error: 'DashScopeTaskCanceled', cause: 'x' });

    // Assess
    await expect(stopped).rejects.toBe(denied);
  });
});

describe('createSfnExecutionService list', () => {
  it('passes the status filter, page size and token', async () => {
    // Prepare
    sfnMock.on(ListExecutionsCommand).resolves({ executions: [] });

    // Act
    await service.list({ status: 'SUCCEEDED', limit: 5, nextToken: 'token-2' });

    // Assess
    expect(sfnMock.commandCalls(ListExecutionsCommand)[0]?.args[0].input).toEqual({
      stateMachineArn: STATE_MACHINE_ARN,
      statusFilter: 'SUCCEEDED',
      maxResults: 5,
      nextToken: 'token-2',
    });
  });

  it('maps the executions and the next token', async () => {
    // Prepare
    sfnMock.on(ListExecutionsCommand).resolves({
      executions: [
        {
          executionArn: EXECUTION_ARN,
          stateMachineArn: STATE_MACHINE_ARN,
          name: 'gen-2',
          status: 'RUNNING',
          startDate: new Date('2026-03-01T12:05:00Z'),
        },
        {
          executionArn: EXECUTION_ARN,
          stateMachineArn: STATE_MACHINE_ARN,
          name: 'gen-1',
          status: 'SUCCEEDED',
          startDate: new Date('2026-03-01T12:00:00Z'),
          stopDate: new Date('2026-03-01T12:01:00Z'),
        },
      ],
      nextToken: 'token-3',
    });

    // Act
    const page = await service.list({ limit: 2 });

    // Assess
    expect(page).toEqual({
      items: [
        {
          name: 'gen-2',
          status: 'RUNNING',
          startDate: new Date('2026-03-01T12:05:00Z'),
          stopDate: undefined,
        },
        {
          name: 'gen-1',
          status: 'SUCCEEDED',
          startDate: new Date('2026-03-01T12:00:00Z'),
          stopDate: new Date('2026-03-01T12:01:00Z'),
        },
      ],
      nextToken: 'token-3',
    });
  });

  it('answers no next token on the last page', async () => {
    // Prepare
    sfnMock.on(ListExecutionsCommand).resolves({ executions: [] });

    // Act
    const page = await service.list({ limit: 2 });

    // Assess
    expect(page).toEqual({ items: [], nextToken: undefined });
  });

  it('throws InvalidPageTokenError for a token Step Functions did not issue', async () => {
    // Prepare
    sfnMock.on(ListExecutionsCommand).rejects(new InvalidToken({ message: 'Invalid token', $metadata: {} }));

    // Act
    const listed = service.list({ limit: 2, nextToken: 'forged' });

    // Assess
    await expect(listed).rejects.toBeInstanceOf(InvalidPageTokenError);
  });

  it('lets other errors through', async () => {
    // Prepare
    const denied = new Error('AccessDenied');
    sfnMock.on(ListExecutionsCommand).rejects(denied);

    // Act
    const listed = service.list({ limit: 2 });

    // Assess
    await expect(listed).rejects.toBe(denied);
  });
});
