import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { getRequestListener } from '@hono/node-server';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { STACK_ID } from '../../infra/app.js';
import { API_BASE_PATH, createEmulator, type EmulatorControl } from '../../local/dashscope-emulator/app.js';
import { ensureTable, type LocalDynamo, startLocalDynamo } from '../../local/dynamodb.js';
import { lambdaNode } from '../../local/lambda-node.js';
import { generationsTableDefinition } from '../../local/runner.js';
import { type LocalS3, startLocalS3 } from '../../local/s3.js';
import { cdkSynthOutput } from '../support/cdk-synth.js';
import {
  type BundleRun,
  type DeployedFunction,
  type Deployment,
  deployedFunctions,
  type Invocation,
  lambdaEnvironment,
  physicalName,
  readTemplate,
  resolveTemplateValue,
  runtimeMajor,
  type StartedBundle,
  startBundle,
} from '../support/deployed-bundle.js';
import { type RecordingAws, startRecordingAws } from '../support/recording-aws.js';
import { selfSignedCertificate } from '../support/self-signed.js';

/**
 * The deployable bundles, tried as deployed: each `cdk.out` asset of the real `cdk synth` the
 * infra project runs anyway (test/support/cdk-synth.ts; nothing is synthesized or bundled here)
 * is imported in a fresh process of the Lambda runtime's Node (test/support/deployed-bundle.ts),
 * with its synthesized environment and nothing else, and sent what its triggers send. Together
 * they carry one generation through, as the workflow would: the trigger starts it from a one-line
 * request file, Admit queues it, the dispatcher grants it, Submit, Poll (of the running task),
 * Persist (of its one image), Notify, the reconciler, then the API (`GET /healthz`,
 * `GET /v1/generations` and the generation with its image link). A missing module, an ESM/CJS
 * mistake, a variable read at import time that the template does not set, a service call the
 * local parts cannot answer: each fails here, not at a cold start on AWS.
 *
 * The SDK reaches s3rver and dynalite through `AWS_ENDPOINT_URL_S3`/`_DYNAMODB` (an IP address
 * as endpoint makes the S3 client path-style by itself, as s3rver needs), the services with no
 * local part (Step Functions, Secrets Manager, EventBridge, SQS, Lambda) through
 * `AWS_ENDPOINT_URL`, a recording endpoint (test/support/recording-aws.ts) the test asserts on.
 * DashScope is the emulator, over https with a certificate made here and trusted through
 * `NODE_EXTRA_CA_CERTS`, because the deployed Persist downloads https results only. Locally changed
 * from the template: `DASHSCOPE_BASE_URL` and `RESULT_HOSTS` (the emulator), and the SDK's
 * checksum settings (s3rver keeps the aws-chunked framing of a streamed upload otherwise). The API
 * key is read as on AWS: from the secret the template names, through the Secrets Manager client the
 * bundles leave to the runtime (here: this project's, see deployed-bundle.ts).
 */

/** The runtime every function is synthesized with (infra/constructs/generation-function.ts). */
const LAMBDA_RUNTIME = 'nodejs24.x';
const NODE = lambdaNode(runtimeMajor(LAMBDA_RUNTIME));
const ON_NODE = NODE.fallback
  ? `on the current Node ${NODE.version}, not the Lambda's (${NODE.fallback})`
  : `on Node ${NODE.version} (${LAMBDA_RUNTIME})`;

const REGION = 'us-east-1';
const ACCOUNT = '000000000000';
const BUCKET = 'sd35-bundle-images';
const TABLE = 'sd35-bundle-generations';
const WEBHOOK_SECRET = 'a-webhook-signing-secret-of-some-length';
/** How long the emulator runs the generation's task: Poll sees it RUNNING until the clock jumps. */
const TASK_MS = 600_000;
const REQUEST = { prompt: 'A lighthouse on a cliff at dusk', steps: 200, seed: 7 };

let work: string;
let s3: LocalS3;
let dynamo: LocalDynamo;
let aws: RecordingAws;
let emulator: { origin: string; control: EmulatorControl; server: Server; apiKey: string };
/** Added to the emulator's clock: moves its tasks on without waiting. */
let emulatorOffsetMs = 0;
let deployment: Deployment;
let functions: DeployedFunction[];
let caFile: string;
/** The API key's secret, as the template names it. */
let apiKeySecretId: string;
const processes = new Map<string, StartedBundle>();
const runs = new Map<string, BundleRun>();

beforeAll(async () => {
  const outdir = await cdkSynthOutput(inject('cdkSynthDir'));
  const template = readTemplate(outdir, STACK_ID);
  functions = deployedFunctions(outdir, STACK_ID);
  work = mkdtempSync(path.join(tmpdir(), 'sd35-deployed-bundles-'));
  const { key, cert } = selfSignedCertificate();
  caFile = path.join(work, 'ca.pem');
  writeFileSync(caFile, cert);
  const { app, control, apiKey } = createEmulator({
    clock: { now: () => Date.now() + emulatorOffsetMs },
    publicOrigin: () => emulator.origin,
  });
  const server = createServer({ key, cert }, getRequestListener(app.fetch));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  emulator = {
    origin: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
    control,
    server,
    apiKey,
  };
  [s3, dynamo] = await Promise.all([
    startLocalS3({ directory: path.join(work, 's3'), bucket: BUCKET }),
    startLocalDynamo(),
  ]);
  await ensureTable(dynamo.client, TABLE, generationsTableDefinition(template));
  const tableId = Object.keys(template.Resources).find(
    (id) => template.Resources[id]?.Type === 'AWS::DynamoDB::Table',
  );
  const bucketId = Object.keys(template.Resources).find(
    (id) => template.Resources[id]?.Type === 'AWS::S3::Bucket',
  );
  deployment = {
    template,
    stackName: STACK_ID,
    region: REGION,
    account: ACCOUNT,
    names: { [tableId ?? '']: TABLE, [bucketId ?? '']: BUCKET },
  };
  // The secrets the template names, by their variables, read from Secrets Manager as on AWS.
  const secretValues: Record<string, string> = {
    DASHSCOPE_API_KEY_SECRET_ID: apiKey,
    WEBHOOK_SECRET_ID: WEBHOOK_SECRET,
  };
  const secrets = Object.fromEntries(
    functions.flatMap((deployed) =>
      Object.entries(secretValues)
        .filter(([variable]) => variable in deployed.variables)
        .map(([variable, value]) => [
          String(resolveTemplateValue(deployed.variables[variable], deployment)),
          value,
        ]),
    ),
  );
  apiKeySecretId = String(
    resolveTemplateValue(fn('FunctionsSubmit').variables.DASHSCOPE_API_KEY_SECRET_ID, deployment),
  );
  aws = await startRecordingAws({ tls: { key, cert }, account: ACCOUNT, region: REGION, secrets });
  deployment = { ...deployment, sqsEndpoint: aws.endpoint };
  // Every bundle's process at once: their imports (Lambda's init, most of each one's CPU) run
  // side by side; the events then go to each in the workflow's order.
  for (const deployed of functions) {
    processes.set(
      deployed.logicalId,
      startBundle({ node: NODE.path, fn: deployed, environment: environmentOf(deployed) }),
    );
  }
}, 300_000);

afterAll(async () => {
  await Promise.all([...processes.values()].map((started) => started.stop()));
  await Promise.all([
    s3?.close(),
    dynamo?.close(),
    aws?.close(),
    emulator &&
      new Promise<void>((resolve) => {
        emulator.server.close(() => resolve());
        emulator.server.closeAllConnections();
      }),
  ]);
  if (work) rmSync(work, { recursive: true, force: true });
});

/** The function whose logical id starts with `prefix` (CDK adds a hash). */
function fn(prefix: string): DeployedFunction {
  const found = functions.find((candidate) => candidate.logicalId.startsWith(prefix));
  if (!found) throw new Error(`no bundled function ${prefix}* in the template`);
  return found;
}

/** `deployed`'s environment as synthesized, its services pointed at the local ones. */
function environmentOf(deployed: DeployedFunction): Record<string, string> {
  return lambdaEnvironment(
    deployed,
    deployment,
    {
      endpoint: aws.endpoint,
      services: { S3: s3.endpoint, DYNAMODB: dynamo.endpoint },
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
      home: work,
    },
    {
      NODE_EXTRA_CA_CERTS: caFile,
      // The emulator instead of DashScope, and its host the one results come from.
      ...('DASHSCOPE_BASE_URL' in deployed.variables
        ? { DASHSCOPE_BASE_URL: `${emulator.origin}${API_BASE_PATH}` }
        : {}),
      ...('RESULT_HOSTS' in deployed.variables ? { RESULT_HOSTS: '127.0.0.1' } : {}),
      // s3rver stores a streamed upload with its aws-chunked framing: no checksums unless required.
      AWS_REQUEST_CHECKSUM_CALCULATION: 'WHEN_REQUIRED',
      AWS_RESPONSE_CHECKSUM_VALIDATION: 'WHEN_REQUIRED',
    },
  );
}

/** Runs `prefix`'s bundle with `events`; fails the test with the function's logs when one throws. */
async function run(prefix: string, events: unknown[]): Promise<unknown[]> {
  const deployed = fn(prefix);
  const started = processes.get(deployed.logicalId);
  if (!started) throw new Error(`${deployed.logicalId}'s process was not started`);
  const result = await started.run(events);
  runs.set(deployed.logicalId, result);
  expect(result.nodeVersion, `${prefix}'s process`).toBe(NODE.version);
  const failed = result.invocations.find(
    (invocation): invocation is Extract<Invocation, { ok: false }> => !invocation.ok,
  );
  if (failed) {
    throw new Error(
      `${prefix}: ${failed.errorType}: ${failed.errorMessage}\n${failed.trace ?? ''}\n--- its logs ---\n${result.logs}`,
    );
  }
  return result.invocations.map((invocation) => (invocation as { value: unknown }).value);
}

/** The calls the recording endpoint received since `from`. */
const callsSince = (from: number) => aws.calls.slice(from);

/** What travels through the state machine, built up as its ResultPaths would. */
const state: {
  id?: string;
  request?: Record<string, unknown>;
  executionId?: string;
  startedAt?: string;
  admission?: Record<string, unknown>;
  task?: Record<string, unknown>;
  result?: Record<string, unknown>;
} = {};
const context = () => ({ executionId: state.executionId, startedAt: state.startedAt });

describe(`the deployable bundles of a real cdk synth, each in a fresh process ${ON_NODE}`, () => {
  it('every function is synthesized for the runtime whose Node runs them here', () => {
    expect(functions.length).toBeGreaterThan(0);
    for (const deployed of functions) expect(deployed.runtime, deployed.logicalId).toBe(LAMBDA_RUNTIME);
  });

  it('the trigger reads a one-line request file from S3, starts one execution and writes its report', async () => {
    const key = 'requests/one.jsonl';
    const put = await s3.client.send(
      new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: `${JSON.stringify(REQUEST)}\n` }),
    );
    const from = aws.calls.length;

    const [report] = (await run('EventsTrigger', [
      {
        version: '0',
        id: 'b7f0c7a5-0000-4000-8000-000000000001',
        'detail-type': 'Object Created',
        source: 'aws.s3',
        account: ACCOUNT,
        time: new Date().toISOString(),
        region: REGION,
        resources: [`arn:aws:s3:::${BUCKET}`],
        detail: {
          version: '0',
          bucket: { name: BUCKET },
          object: { key, size: 1, etag: put.ETag?.replaceAll('"', ''), sequencer: '00' },
          'request-id': 'R1',
          requester: ACCOUNT,
          reason: 'PutObject',
        },
      },
    ])) as [{ results: { line: number; id?: string; status: string }[] }];

    expect(report.results).toEqual([expect.objectContaining({ line: 1, status: 'started' })]);
    const starts = callsSince(from).filter((call) => call.operation === 'StartExecution');
    expect(starts).toHaveLength(1);
    const start = starts[0]!;
    const machine = Object.keys(deployment.template.Resources).find(
      (id) => deployment.template.Resources[id]?.Type === 'AWS::StepFunctions::StateMachine',
    );
    expect(start.input.stateMachineArn).toBe(
      `arn:aws:states:${REGION}:${ACCOUNT}:stateMachine:${physicalName(deployment, machine ?? '')}`,
    );
    state.id = String(start.input.name);
    expect(state.id).toBe(report.results[0]?.id);
    state.request = JSON.parse(String(start.input.input)) as Record<string, unknown>;
    state.executionId = `arn:aws:states:${REGION}:${ACCOUNT}:execution:x:${state.id}`;
    state.startedAt = new Date().toISOString();
    const stored = await s3.client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: `${key}.result` }));
    expect(stored.ContentLength).toBeGreaterThan(0);
  });

  it('Admit queues the generation and kicks the dispatcher; the dispatcher grants it through its task token', async () => {
    const from = aws.calls.length;
    const [admitted] = await run('FunctionsAdmit', [
      { id: state.id, request: state.request, taskToken: 'task-token-admit', ...context() },
    ]);
    expect(admitted).toEqual({});
    const dispatcherName = physicalName(deployment, fn('FunctionsDispatcher').logicalId);
    expect(callsSince(from).filter((call) => call.operation === 'Invoke')).toEqual([
      {
        service: 'lambda',
        operation: 'Invoke',
        input: expect.objectContaining({ FunctionName: dispatcherName, InvocationType: 'Event' }),
      },
    ]);

    const granted = aws.calls.length;
    // The one-minute sweep's event: the dispatcher also measures the queue then.
    await run('FunctionsDispatcher', [
      {
        version: '0',
        id: 'b7f0c7a5-0000-4000-8000-000000000002',
        'detail-type': 'Scheduled Event',
        source: 'aws.events',
        account: ACCOUNT,
        time: new Date().toISOString(),
        region: REGION,
        resources: [`arn:aws:events:${REGION}:${ACCOUNT}:rule/sweep`],
        detail: {},
      },
    ]);
    const grants = callsSince(granted).filter((call) => call.operation === 'SendTaskSuccess');
    expect(grants).toHaveLength(1);
    expect(grants[0]?.input.taskToken).toBe('task-token-admit');
    state.admission = JSON.parse(String(grants[0]?.input.output)) as Record<string, unknown>;
    expect(state.admission).toMatchObject({ account: 'default', grantedAt: expect.any(String) });
  });

  it('Submit reads the API key from its secret and submits the task to DashScope', async () => {
    emulator.control.planNextTask({ durationMs: TASK_MS });
    const from = aws.calls.length;
    const [task] = (await run('FunctionsSubmit', [
      { id: state.id, request: state.request, admission: state.admission, ...context() },
    ])) as [Record<string, unknown>];
    state.task = task;

    expect(task).toMatchObject({ status: expect.stringMatching(/^(queued|running)$/), account: 'default' });
    expect(emulator.control.tasks().map((snapshot) => snapshot.taskId)).toEqual([task.taskId]);
    expect(callsSince(from)).toContainEqual(
      expect.objectContaining({ operation: 'GetSecretValue', input: { SecretId: apiKeySecretId } }),
    );
  });

  it('Poll of the running task', async () => {
    const [task] = (await run('FunctionsPoll', [
      { id: state.id, request: state.request, task: state.task, ...context() },
    ])) as [Record<string, unknown>];
    const submitted = state.task;
    state.task = task;

    expect(task).toMatchObject({ taskId: submitted?.taskId, status: 'running', dashscopeStatus: 'RUNNING' });
    expect(task.nextPollSeconds).toBeGreaterThanOrEqual(1);
  });

  it('Persist of its one image: downloaded over https from the result URL, stored in S3', async () => {
    emulatorOffsetMs += TASK_MS + 1000;
    const [result] = (await run('FunctionsPersist', [
      { id: state.id, request: state.request, task: { ...state.task, status: 'succeeded' }, ...context() },
    ])) as [
      { status: string; images: { key: string; bytes: number; thumbnail?: unknown }[]; failed: unknown[] },
    ];
    state.result = result;

    expect(result).toMatchObject({ status: 'complete', failed: [] });
    expect(result.images).toHaveLength(1);
    const image = result.images[0]!;
    const stored = await s3.client.send(new GetObjectCommand({ Bucket: BUCKET, Key: image.key }));
    const bytes = Buffer.from(await stored.Body!.transformToByteArray());
    expect(bytes.length).toBe(image.bytes);
    expect(bytes.subarray(1, 4).toString('latin1')).toBe('PNG');
    // The bundle carries sharp for linux-arm64 only: its thumbnail is made on an arm64 host.
    if (process.arch === 'arm64') expect(image.thumbnail).toBeDefined();
    else
      expect(runs.get(fn('FunctionsPersist').logicalId)?.logs).toMatch(
        new RegExp(`Thumbnail not made.*sharp.*linux-${process.arch}`),
      );
  });

  it('Notify records the end, announces it on EventBridge, frees the slot and completes the file’s batch', async () => {
    const from = aws.calls.length;
    const [notified] = await run('FunctionsNotify', [
      {
        outcome: 'succeeded',
        state: {
          id: state.id,
          request: state.request,
          admission: state.admission,
          task: { ...state.task, status: 'succeeded' },
          result: state.result,
        },
        ...context(),
      },
    ]);

    expect(notified).toBeDefined();
    const published = callsSince(from).filter((call) => call.operation === 'PutEvents');
    const entries = published.flatMap(
      (call) => call.input.Entries as { DetailType: string; Detail: string; EventBusName: string }[],
    );
    // The generation, then its batch: the request file's only line was its last.
    expect(entries).toEqual([
      expect.objectContaining({ DetailType: 'Generation Succeeded', EventBusName: 'default' }),
      expect.objectContaining({ DetailType: 'Batch Completed', EventBusName: 'default' }),
    ]);
    expect(JSON.parse(entries[0]!.Detail)).toMatchObject({ id: state.id });
    expect(JSON.parse(entries[1]!.Detail)).toMatchObject({
      status: 'completed',
      counts: { total: 1, succeeded: 1 },
      resultsKey: expect.stringMatching(/^batches\/file-[\w-]+\/results\.jsonl$/),
    });
  });

  it("the reconciler finds the execution's end already recorded and announces nothing", async () => {
    const from = aws.calls.length;
    const [reconciled] = await run('ReconcilerHandler', [
      {
        version: '0',
        id: 'b7f0c7a5-0000-4000-8000-000000000003',
        'detail-type': 'Step Functions Execution Status Change',
        source: 'aws.states',
        account: ACCOUNT,
        time: new Date().toISOString(),
        region: REGION,
        resources: [state.executionId],
        detail: {
          executionArn: state.executionId,
          name: state.id,
          status: 'SUCCEEDED',
          startDate: Date.parse(state.startedAt ?? ''),
          stopDate: Date.now(),
          input: JSON.stringify(state.request),
          output: JSON.stringify({ ...state, task: { ...state.task, status: 'succeeded' } }),
        },
      },
    ]);

    expect(reconciled).toMatchObject({ corrected: false, announced: false });
    expect(callsSince(from).filter((call) => call.operation === 'PutEvents')).toEqual([]);
  });

  it('the API answers GET /healthz, lists the generation, and links its image in S3', async () => {
    const get = (rawPath: string) => ({
      version: '2.0',
      routeKey: 'ANY /{proxy+}',
      rawPath,
      rawQueryString: '',
      headers: { host: 'api.example.com', 'user-agent': 'test' },
      isBase64Encoded: false,
      requestContext: {
        accountId: ACCOUNT,
        apiId: 'api',
        authorizer:
          rawPath === '/healthz' ? undefined : { iam: { userArn: `arn:aws:iam::${ACCOUNT}:user/tester` } },
        domainName: 'api.example.com',
        domainPrefix: 'api',
        http: {
          method: 'GET',
          path: rawPath,
          protocol: 'HTTP/1.1',
          sourceIp: '203.0.113.1',
          userAgent: 'test',
        },
        requestId: 'r1',
        routeKey: 'ANY /{proxy+}',
        stage: '$default',
        time: '01/Mar/2026:12:00:00 +0000',
        timeEpoch: Date.now(),
      },
    });
    const [health, list, one] = (await run('ApiHandler', [
      get('/healthz'),
      get('/v1/generations'),
      get(`/v1/generations/${state.id}`),
    ])) as { statusCode: number; body: string }[];

    expect(health?.statusCode).toBe(200);
    expect(list?.statusCode).toBe(200);
    expect(JSON.parse(list!.body).data).toEqual([
      expect.objectContaining({ id: state.id, status: 'succeeded' }),
    ]);
    expect(one?.statusCode).toBe(200);
    const view = JSON.parse(one!.body) as { images?: { url?: string }[] };
    const url = view.images?.[0]?.url ?? '';
    // Path-style, at s3rver's address: what an IP-address endpoint makes the S3 client sign.
    expect(url.startsWith(`${s3.endpoint}/${BUCKET}/`)).toBe(true);
    const download = await fetch(url);
    expect(download.status).toBe(200);
    expect(Buffer.from(await download.arrayBuffer()).length).toBe(
      (state.result as { images: { bytes: number }[] }).images[0]?.bytes,
    );
  });

  it('tried every function of the template', () => {
    expect([...runs.keys()].sort()).toEqual(functions.map((deployed) => deployed.logicalId).sort());
    expect(aws.calls.filter((call) => call.service === 'unknown')).toEqual([]);
  });
});
