import { createHash, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createSecureServer } from 'node:https';
import type { AddressInfo } from 'node:net';

/** One call the recording endpoint received. */
export interface RecordedAwsCall {
  /** `states`, `secretsmanager`, `events`, `sqs` or `lambda`; `unknown` for anything else. */
  readonly service: string;
  /** The API operation, e.g. `StartExecution`, `Invoke`. */
  readonly operation: string;
  /** The request's JSON body (Lambda Invoke: the payload, and `FunctionName`, `InvocationType`). */
  readonly input: Record<string, unknown>;
}

export interface RecordingAws {
  /** `http(s)://127.0.0.1:PORT`: give it as `AWS_ENDPOINT_URL` (every service without its own). */
  readonly endpoint: string;
  /** Every call so far, in order. */
  readonly calls: RecordedAwsCall[];
  close(): Promise<void>;
}

export interface RecordingAwsOptions {
  /** Secrets Manager's secrets, by name or ARN: their `SecretString`. */
  readonly secrets?: Readonly<Record<string, string>>;
  /**
   * Serve https with this key and certificate (SQS queue URLs must be https, and the SDK sends
   * to a queue's URL). @default plain http
   */
  readonly tls?: { readonly key: string; readonly cert: string };
  /** The account and region of the ARNs it makes. @default 000000000000, us-east-1 */
  readonly account?: string;
  readonly region?: string;
}

/**
 * A recording stand-in for the AWS services that have no local part, for a deployable bundle run
 * in a child process (test/support/deployed-bundle.ts): it speaks just enough of each one's JSON
 * protocol for this project's calls, answers them as the service would on success, and records
 * them for the test to assert on. Not an emulator: nothing it is told changes what it answers.
 *
 * - Step Functions (`AWSStepFunctions.*`, JSON 1.0): StartExecution, SendTaskSuccess,
 *   SendTaskFailure, SendTaskHeartbeat;
 * - Secrets Manager (`secretsmanager.GetSecretValue`, JSON 1.1): the `secrets` given, else
 *   ResourceNotFoundException;
 * - EventBridge (`AWSEvents.PutEvents`, JSON 1.1);
 * - SQS (`AmazonSQS.SendMessage`, JSON 1.0);
 * - Lambda (`POST /2015-03-31/functions/{name}/invocations`, REST JSON): Invoke.
 *
 * Any other call is recorded and answered 400 `UnknownOperationException`.
 */
export async function startRecordingAws(options: RecordingAwsOptions = {}): Promise<RecordingAws> {
  const account = options.account ?? '000000000000';
  const region = options.region ?? 'us-east-1';
  const calls: RecordedAwsCall[] = [];
  const listener = (request: IncomingMessage, response: ServerResponse) => {
    readBody(request).then(
      (body) => {
        const call = parseCall(request, body);
        calls.push(call);
        const [status, answer] = answerOf(call, { account, region, secrets: options.secrets ?? {} });
        send(response, request, status, answer);
      },
      () => response.destroy(),
    );
  };
  const server = options.tls ? createSecureServer(options.tls, listener) : createServer(listener);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    calls,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

const SERVICES: Record<string, string> = {
  AWSStepFunctions: 'states',
  secretsmanager: 'secretsmanager',
  AWSEvents: 'events',
  AmazonSQS: 'sqs',
};

function parseCall(request: IncomingMessage, body: string): RecordedAwsCall {
  const json = (): Record<string, unknown> => {
    try {
      return body ? (JSON.parse(body) as Record<string, unknown>) : {};
    } catch {
      return { body };
    }
  };
  const invoke = /^\/2015-03-31\/functions\/([^/]+)\/invocations/.exec(request.url ?? '');
  if (invoke && request.method === 'POST') {
    return {
      service: 'lambda',
      operation: 'Invoke',
      input: {
        FunctionName: decodeURIComponent(invoke[1] ?? ''),
        InvocationType: request.headers['x-amz-invocation-type'] ?? 'RequestResponse',
        Payload: json(),
      },
    };
  }
  const [prefix = '', operation = ''] = String(request.headers['x-amz-target'] ?? '').split('.');
  return {
    service: SERVICES[prefix] ?? 'unknown',
    operation: operation || `${request.method} ${request.url}`,
    input: json(),
  };
}

function answerOf(
  call: RecordedAwsCall,
  context: { account: string; region: string; secrets: Readonly<Record<string, string>> },
): [number, unknown] {
  const { input } = call;
  switch (`${call.service}.${call.operation}`) {
    case 'states.StartExecution': {
      const machine = String(input.stateMachineArn ?? '');
      const execution = `${machine.replace(':stateMachine:', ':execution:')}:${String(input.name ?? randomUUID())}`;
      return [200, { executionArn: execution, startDate: Date.now() / 1000 }];
    }
    case 'states.SendTaskSuccess':
    case 'states.SendTaskFailure':
    case 'states.SendTaskHeartbeat':
      return [200, {}];
    case 'secretsmanager.GetSecretValue': {
      const id = String(input.SecretId ?? '');
      const value = context.secrets[id];
      if (value === undefined)
        return [
          400,
          {
            __type: 'ResourceNotFoundException',
            message: "Secrets Manager can't find the specified secret.",
          },
        ];
      const name = id.startsWith('arn:') ? (id.split(':')[6] ?? id) : id;
      return [
        200,
        {
          ARN: id.startsWith('arn:')
            ? id
            : `arn:aws:secretsmanager:${context.region}:${context.account}:secret:${name}-AbCdEf`,
          Name: name,
          SecretString: value,
          VersionId: randomUUID(),
          VersionStages: ['AWSCURRENT'],
          CreatedDate: Date.now() / 1000,
        },
      ];
    }
    case 'events.PutEvents': {
      const entries = Array.isArray(input.Entries) ? input.Entries : [];
      return [200, { FailedEntryCount: 0, Entries: entries.map(() => ({ EventId: randomUUID() })) }];
    }
    case 'sqs.SendMessage': {
      const md5 = createHash('md5')
        .update(String(input.MessageBody ?? ''))
        .digest('hex');
      return [200, { MessageId: randomUUID(), MD5OfMessageBody: md5 }];
    }
    case 'lambda.Invoke':
      return input.InvocationType === 'Event' ? [202, undefined] : [200, null];
    default:
      return [
        400,
        {
          __type: 'UnknownOperationException',
          message: `the recording AWS endpoint does not answer ${call.service} ${call.operation}`,
        },
      ];
  }
}

function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    request.on('error', reject);
  });
}

function send(response: ServerResponse, request: IncomingMessage, status: number, answer: unknown): void {
  const body = answer === undefined ? '' : JSON.stringify(answer);
  const type = String(request.headers['content-type'] ?? 'application/json');
  response.writeHead(status, {
    'content-type': type.startsWith('application/x-amz-json') ? type : 'application/json',
    'content-length': Buffer.byteLength(body),
    'x-amzn-requestid': randomUUID(),
    ...(status >= 400 && answer && typeof answer === 'object' && '__type' in answer
      ? { 'x-amzn-errortype': String((answer as { __type: string }).__type) }
      : {}),
  });
  response.end(body);
}
