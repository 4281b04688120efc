import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createDynamoBatchIndex } from '../functions/shared/aws/dynamodb-batches.js';
import { createDynamoGenerationIndex } from '../functions/shared/aws/dynamodb-index.js';
import type { BatchIndex } from '../functions/shared/batch.js';
import { type AdjustableClock, type Clock, systemClock } from '../functions/shared/clock.js';
import { DEFAULT_DASHSCOPE_BASE_URL } from '../functions/shared/dashscope/client.js';
import type { GenerationIndex } from '../functions/shared/generation-index.js';
import type { Logger } from '../functions/shared/logger.js';
import { emulatorRunTimeModel } from './dashscope-emulator/run-time.js';
import { emulatorEndpoint, type RunningEmulator, startEmulator } from './dashscope-emulator/server.js';
import { ensureTable, type LocalDynamo, startLocalDynamo } from './dynamodb.js';
import { createLocalEventSink, type LocalEventSink } from './event-sink.js';
import { createLocalExecutionService, type LocalExecutionService } from './execution-service.js';
import { ExecutionStore } from './execution-store.js';
import {
  createLocalRunner,
  generationsTableDefinition,
  LOCAL_TABLE,
  type LocalRunner,
  type LocalRunnerOptions,
} from './runner.js';
import { type LocalS3, startLocalS3 } from './s3.js';

export const PROJECT_ROOT = path.join(import.meta.dirname, '..');
/** Names another folder for the local state than `.local/` (tests: a temporary one per case). */
export const LOCAL_DIR_ENV = 'SD35_LOCAL_DIR';
/**
 * Local state (s3rver data, the index, the executions, the emulator's tasks, copies of images,
 * events, the webhook secret) lives here, git-ignored: `$SD35_LOCAL_DIR`, else `.local/`.
 */
export const LOCAL_DIR = path.resolve(process.env[LOCAL_DIR_ENV] || path.join(PROJECT_ROOT, '.local'));

export interface LocalPipelineOptions {
  /** s3rver's data folder. @default .local/s3 */
  readonly s3Directory?: string;
  /**
   * The local DynamoDB's data folder (the generations index), shared with any process already
   * serving it; `null` keeps the index in memory (tests). @default .local/dynamodb
   */
  readonly dynamoDirectory?: string | null;
  /**
   * Where executions are kept, so they outlive the process ({@link ExecutionStore}).
   * @default in memory: they end with the process
   */
  readonly executionsDirectory?: string;
  /** Real DashScope instead of the emulator. */
  readonly dashscopeApiKey?: string;
  readonly dashscopeBaseUrl?: string;
  /** Where the emulator keeps its tasks, so a restarted one still knows them. @default in memory */
  readonly emulatorStateFile?: string;
  /** Emulator speed-up of run times. @default 4 */
  readonly emulatorSpeed?: number;
  /** The key the emulator accepts, and the functions send (tests: a recognizable canary). @default the emulator's */
  readonly emulatorApiKey?: string;
  /** Tests: waits in virtual time on this clock, shared with the emulator. */
  readonly virtualWaits?: AdjustableClock;
  readonly retryIntervalMs?: number;
  /** Extra environment for every function, e.g. shorter client timeouts (see `LocalRunnerOptions`). */
  readonly environment?: LocalRunnerOptions['environment'];
  /** Completion events are appended here. @default kept in memory only */
  readonly eventsFile?: string;
  /** Webhook signing secret. @default read from (or created in) .local/webhook-secret */
  readonly webhookSecret?: string;
  readonly webhookTiming?: LocalRunnerOptions['webhookTiming'];
  readonly logger?: Logger;
  /** Overrides of the stack configuration (cdk.json context `generation`), e.g. `defaultModel`. */
  readonly generation?: LocalRunnerOptions['generation'];
}

/** Everything the workflow needs on this machine, started and wired. */
export interface LocalPipeline {
  readonly clock: Clock;
  readonly s3: LocalS3;
  readonly dynamo: LocalDynamo;
  /** The generations index, as the API reads it. */
  readonly index: GenerationIndex;
  /** The batches, beside it. */
  readonly batches: BatchIndex;
  readonly emulator?: RunningEmulator;
  /** Where the Lambdas reach DashScope, and with which key. */
  readonly dashscope: LocalRunnerOptions['dashscope'];
  readonly runner: LocalRunner;
  readonly executions: LocalExecutionService;
  readonly events: LocalEventSink;
  readonly webhookSecret: string;
  close(): Promise<void>;
}

/**
 * Starts s3rver and (without a DashScope key) the emulator, and builds the local runner over the
 * synthesized state machine with an execution service in front: the shared base of
 * `npm run generate`, `npm start` and the end-to-end tests.
 */
export async function startLocalPipeline(options: LocalPipelineOptions = {}): Promise<LocalPipeline> {
  const clock: Clock = options.virtualWaits ?? systemClock;
  const s3 = await startLocalS3({ directory: options.s3Directory ?? path.join(LOCAL_DIR, 's3') });
  const dynamo = await startLocalDynamo({
    directory:
      options.dynamoDirectory === null
        ? undefined
        : (options.dynamoDirectory ?? path.join(LOCAL_DIR, 'dynamodb')),
  });
  const emulatorSpeed = options.emulatorSpeed ?? 4;
  const emulator = options.dashscopeApiKey
    ? undefined
    : await startEmulator({
        speed: emulatorSpeed,
        clock,
        apiKey: options.emulatorApiKey,
        stateFile: options.emulatorStateFile,
      });
  const dashscope: LocalRunnerOptions['dashscope'] = emulator
    ? // Against the emulator, the poll policy expects the emulator's run times.
      { ...emulatorEndpoint(emulator), runTimeModel: emulatorRunTimeModel(emulatorSpeed) }
    : {
        baseUrl: options.dashscopeBaseUrl ?? DEFAULT_DASHSCOPE_BASE_URL,
        apiKey: options.dashscopeApiKey ?? '',
      };
  const events = createLocalEventSink(options.eventsFile);
  const webhookSecret = options.webhookSecret ?? (await localWebhookSecret());
  const runner = createLocalRunner({
    dashscope,
    generation: options.generation,
    s3: { client: s3.client, bucket: s3.bucket },
    index: { client: dynamo.client, table: LOCAL_TABLE },
    virtualWaits: options.virtualWaits,
    retryIntervalMs: options.retryIntervalMs,
    environment: options.environment,
    events,
    webhookSecret,
    webhookTiming: options.webhookTiming,
    logger: options.logger,
  });
  await ensureTable(dynamo.client, LOCAL_TABLE, generationsTableDefinition(runner.template));
  return {
    clock,
    s3,
    dynamo,
    index: createDynamoGenerationIndex(dynamo.client, LOCAL_TABLE),
    batches: createDynamoBatchIndex(dynamo.client, LOCAL_TABLE),
    emulator,
    dashscope,
    runner,
    executions: createLocalExecutionService(runner, clock, {
      store: new ExecutionStore(options.executionsDirectory),
    }),
    events,
    webhookSecret,
    async close() {
      await emulator?.close();
      await s3.close();
      await dynamo.close();
    },
  };
}

/** The local webhook signing secret, `.local/webhook-secret`, created on first use (Standard Webhooks form). */
export async function localWebhookSecret(): Promise<string> {
  const file = path.join(LOCAL_DIR, 'webhook-secret');
  try {
    return (await readFile(file, 'utf8')).trim();
  } catch {
    const secret = `whsec_${randomBytes(32).toString('base64')}`;
    await mkdir(LOCAL_DIR, { recursive: true });
    await writeFile(file, `${secret}\n`, { mode: 0o600 });
    return secret;
  }
}
