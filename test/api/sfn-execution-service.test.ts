import {
  DescribeExecutionCommand,
  ExecutionAlreadyExists,
  ExecutionDoesNotExist,
  SFNClient,
  StartExecutionCommand,
  StopExecutionCommand,
} from '@aws-sdk/client-sfn';
import { mockClient } from 'aws-sdk-client-mock';
import { beforeEach, describe, expect, it } from 'vitest';
import { createSfnExecutionService } from '../../functions/shared/aws/sfn-execution-service.js';
import { ExecutionAlreadyExistsError } from '../../functions/shared/execution-service.js';

const STATE_MACHINE_ARN = 'arn:aws:states:eu-west-1:123456789012:stateMachine:Sd35Generations';
const EXECUTION_ARN = 'arn:aws:states:eu-west-1:123456789012:execution:Sd35Generations:gen-1';

const sfnMock = mockClient(SFNClient);
const service = createSfnExecutionService(new SFNClient({ region: 'eu-west-1' }), STATE_MACHINE_ARN);

beforeEach(() => {
  sfnMock.reset();
});

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
