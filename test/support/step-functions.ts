import {
  DescribeExecutionCommand,
  type DescribeExecutionOutput,
  ExecutionAlreadyExists,
  ExecutionDoesNotExist,
  type ExecutionStatus,
  SFNClient,
  StartExecutionCommand,
  type StartExecutionInput,
  type StartExecutionOutput,
  StopExecutionCommand,
  type StopExecutionInput,
  type StopExecutionOutput,
} from '@aws-sdk/client-sfn';
import { mockClient } from 'aws-sdk-client-mock';
import type { Clock } from '../../functions/shared/clock.js';

/**
 * Step Functions' answers to StartExecution, DescribeExecution and StopExecution for a STANDARD
 * state machine, as the API Reference documents them (the pages of the three actions, and their
 * errors), played through aws-sdk-client-mock on one SFNClient: the SDK deserializes them into
 * the same objects (dates as `Date`, errors as the modelled exception classes) the adapter gets
 * from the service.
 *
 * - StartExecution answers `{ executionArn, startDate }`. "StartExecution is idempotent for
 *   STANDARD workflows": the same name and input as a running execution answer the original
 *   response; "if the execution is closed or if the input is different, it returns a 400
 *   ExecutionAlreadyExists error".
 * - DescribeExecution answers the whole execution: ARNs, name, status, startDate, input, and once
 *   it closed its stopDate, with output (SUCCEEDED) or error and cause (FAILED, TIMED_OUT,
 *   ABORTED with a stop that gave them), plus the redrive fields. An unknown ARN is a 400
 *   ExecutionDoesNotExist.
 * - StopExecution answers `{ stopDate }` and closes a running execution as ABORTED with the error
 *   and cause it was given. An unknown ARN is a 400 ExecutionDoesNotExist. AWS documents no error
 *   for stopping an execution that already closed; it is modelled as an answer that changes
 *   nothing (what the port promises: "stopping a closed … one is a no-op").
 */
export class StepFunctionsModel {
  /** By execution ARN. */
  readonly #executions = new Map<string, ModelledExecution>();
  #requests = 0;

  constructor(
    readonly stateMachineArn: string,
    private readonly clock: Clock,
  ) {}

  executionArn(name: string): string {
    return `${this.stateMachineArn.replace(':stateMachine:', ':execution:')}:${name}`;
  }

  startExecution(request: StartExecutionInput): StartExecutionOutput {
    if (request.stateMachineArn !== this.stateMachineArn) throw new Error('not this state machine');
    const name = request.name ?? `generated-${this.#requests + 1}`;
    const executionArn = this.executionArn(name);
    const input = request.input ?? '{}';
    const existing = this.#executions.get(executionArn);
    if (existing) {
      if (existing.status === 'RUNNING' && existing.input === input) {
        return { executionArn, startDate: existing.startDate };
      }
      throw new ExecutionAlreadyExists({
        message: `Execution Already Exists: '${executionArn}'`,
        $metadata: this.#metadata(),
      });
    }
    const startDate = new Date(this.clock.now());
    this.#executions.set(executionArn, { executionArn, name, input, status: 'RUNNING', startDate });
    return { executionArn, startDate };
  }

  describeExecution(request: { executionArn?: string }): DescribeExecutionOutput {
    const execution = this.#find(request.executionArn);
    const { executionArn, name, status, startDate, stopDate, input, output, error, cause } = execution;
    return {
      executionArn,
      stateMachineArn: this.stateMachineArn,
      name,
      status,
      startDate,
      ...(stopDate ? { stopDate } : {}),
      input,
      inputDetails: { included: true },
      ...(output !== undefined ? { output, outputDetails: { included: true } } : {}),
      ...(error !== undefined ? { error } : {}),
      ...(cause !== undefined ? { cause } : {}),
      redriveCount: 0,
      ...(status === 'RUNNING' || status === 'SUCCEEDED'
        ? {
            redriveStatus: 'NOT_REDRIVABLE',
            redriveStatusReason: `Execution is ${status} and cannot be redriven`,
          }
        : { redriveStatus: 'REDRIVABLE' }),
    };
  }

  stopExecution(request: StopExecutionInput): StopExecutionOutput {
    const execution = this.#find(request.executionArn);
    if (execution.status !== 'RUNNING') return { stopDate: execution.stopDate };
    execution.status = 'ABORTED';
    execution.stopDate = new Date(this.clock.now());
    if (request.error !== undefined) execution.error = request.error;
    if (request.cause !== undefined) execution.cause = request.cause;
    return { stopDate: execution.stopDate };
  }

  /** What the workflow does of itself: ends a running execution (its output, or its failure). */
  end(name: string, end: ModelledEnd): void {
    const execution = this.#find(this.executionArn(name));
    if (execution.status !== 'RUNNING') throw new Error(`${name} is ${execution.status}, not RUNNING`);
    Object.assign(execution, end, { stopDate: new Date(this.clock.now()) });
  }

  #find(executionArn: string | undefined): ModelledExecution {
    const execution = this.#executions.get(executionArn ?? '');
    if (!execution) {
      throw new ExecutionDoesNotExist({
        message: `Execution Does Not Exist: '${executionArn}'`,
        $metadata: this.#metadata(),
      });
    }
    return execution;
  }

  #metadata() {
    this.#requests += 1;
    return {
      httpStatusCode: 400,
      requestId: `00000000-0000-4000-8000-${String(this.#requests).padStart(12, '0')}`,
    };
  }
}

interface ModelledExecution {
  readonly executionArn: string;
  readonly name: string;
  /** The input as the caller sent it, a JSON string. */
  readonly input: string;
  status: ExecutionStatus;
  readonly startDate: Date;
  stopDate?: Date;
  output?: string;
  error?: string;
  cause?: string;
}

/** How an execution ends on its own (a stop is StopExecution's). */
export type ModelledEnd =
  | { readonly status: 'SUCCEEDED'; readonly output: string }
  | { readonly status: 'FAILED' | 'TIMED_OUT'; readonly error: string; readonly cause: string };

/** An SFNClient whose StartExecution, DescribeExecution and StopExecution `model` answers. */
export function clientOf(model: StepFunctionsModel): SFNClient {
  const client = new SFNClient({
    region: 'eu-west-1',
    credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'example' },
  });
  const mock = mockClient(client);
  mock.on(StartExecutionCommand).callsFake((input: StartExecutionInput) => model.startExecution(input));
  mock
    .on(DescribeExecutionCommand)
    .callsFake((input: { executionArn?: string }) => model.describeExecution(input));
  mock.on(StopExecutionCommand).callsFake((input: StopExecutionInput) => model.stopExecution(input));
  return client;
}
