import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ClassicLevel } from 'classic-level';
import * as z from 'zod';
import {
  type AdmissionQueue,
  type AdmissionSettings,
  admissionSettingsSchema,
  LANES,
} from '../functions/shared/admission.js';
import { createDynamoAdmissionQueue } from '../functions/shared/aws/dynamodb-admission.js';
import { createDynamoBatchIndex } from '../functions/shared/aws/dynamodb-batches.js';
import { createDynamoGenerationIndex } from '../functions/shared/aws/dynamodb-index.js';
import type { BatchIndex } from '../functions/shared/batch.js';
import { type Clock, systemClock } from '../functions/shared/clock.js';
import { EXECUTION_INTERRUPTED } from '../functions/shared/errors.js';
import type { ExecutionRecord } from '../functions/shared/execution-service.js';
import type { GenerationIndex, GenerationRecord } from '../functions/shared/generation-index.js';
import { type Model, modelSchema } from '../functions/shared/generation-request.js';
import { type Logger, silentLogger } from '../functions/shared/logger.js';
import { STATE_NAMES } from '../functions/shared/state-names.js';
import { isAlive, localDynamoClient } from './dynamodb.js';
import {
  type ChannelServer,
  type EngineClient,
  type EngineHealth,
  type EngineKind,
  EngineUnreachableError,
  engineClient,
  serveEngineChannel,
} from './engine-channel.js';
import { createLocalEventSink, type LocalEventSink } from './event-sink.js';
import { type LocalPipeline, type LocalPipelineOptions, startLocalPipeline } from './pipeline.js';
import { type RequestFileWatch, watchPipelineRequestFiles } from './request-file-watch.js';
import { LOCAL_TABLE } from './runner.js';
import { localS3Client } from './s3.js';

/**
 * One engine per local folder. Exactly one process (the owner) runs the executions, holds their
 * task tokens and runs the dispatcher for a `.local/` folder: the first of `npm start` or
 * `npm run generate` to open it. It takes a lock the operating system releases when the process
 * ends however it ends (LevelDB's lock on `engine.lock/`), starts S3, DynamoDB and the emulator,
 * redrives every execution the previous owner left running, and announces itself in
 * `engine.json`. Any other process of the folder is a follower: it starts and follows
 * executions through the owner's channel, and reads the same index and bucket. When the owner
 * goes away, a follower takes over: it becomes the owner, and recovers what was left.
 */

/** What the owner writes into `engine.json` for the followers (mode 0600: it holds the channel's token). */
export const announcementSchema = z.object({
  pid: z.number().int(),
  kind: z.enum(['server', 'generate']),
  startedAt: z.iso.datetime(),
  channel: z.object({ url: z.url(), token: z.string().min(1) }),
  s3: z.object({ endpoint: z.url(), bucket: z.string().min(1) }),
  dynamo: z.object({ endpoint: z.url() }),
  /**
   * The DashScope endpoint the functions call: the owner's emulator (with its key, which is no
   * secret), or DashScope (whose key each process reads from its own DASHSCOPE_API_KEY).
   */
  dashscope: z.object({ baseUrl: z.url(), emulator: z.boolean(), emulatorKey: z.string().optional() }),
  /** The admission settings the owner's dispatcher grants by, for the followers' queue positions. */
  admission: admissionSettingsSchema,
  /** The configured `defaultModel`, which the followers' front doors fill in as the owner's do. */
  defaultModel: modelSchema.optional(),
  /** `npm start`'s API, when the owner is a server. */
  api: z.url().optional(),
  /**
   * The API's and the trigger's environments as synthesized and pointed at the owner's parts,
   * without DashScope keys: a follower builds its front doors from them as the owner does.
   */
  environments: z.object({
    api: z.record(z.string(), z.string()),
    trigger: z.record(z.string(), z.string()),
  }),
});
export type EngineAnnouncement = z.infer<typeof announcementSchema>;

export interface LocalEngineOptions extends LocalPipelineOptions {
  /** The local folder whose engine this is (`.local/`). */
  readonly localDir: string;
  readonly kind: EngineKind;
  /** The API's URL, for `engine.json`, when this process serves one. */
  readonly apiUrl?: () => string | undefined;
  /**
   * How long a follower waits for an owner that holds the lock to announce itself (its first
   * start may synthesize the stack). @default 180 s
   */
  readonly ownerStartTimeoutMs?: number;
  /** Told when this process becomes the owner after starting as a follower. */
  readonly onPromoted?: (recovery: RecoveryReport) => void;
}

/** What an owner found when it started, and did about it. */
export interface RecoveryReport {
  /** Executions redriven from where the previous owner left them. */
  readonly resumed: readonly string[];
  /** Generations the index shows unfinished with no execution to finish them: ended `interrupted`. */
  readonly interrupted: readonly string[];
  /** Executions that had ended but whose end had not reached the index: recorded now. */
  readonly reconciled: readonly string[];
}

/** The engine as a process of the folder uses it, owner or follower. */
export interface LocalEngine {
  readonly role: 'owner' | 'follower';
  /** Who runs the executions (this process when it is the owner). */
  readonly owner: EngineAnnouncement;
  /** The owner's pipeline, in the owner only. */
  readonly pipeline: LocalPipeline | undefined;
  /** The last recovery this process ran as the owner. */
  readonly recovery: RecoveryReport | undefined;
  readonly clock: Clock;
  readonly index: GenerationIndex;
  readonly batches: BatchIndex;
  readonly executions: LocalEngineExecutions;
  readonly s3: EngineS3;
  readonly events: LocalEventSink;
  /** The admission queue and its settings, as the API shows queue positions. */
  readonly admission: EngineAdmission;
  /** Where DashScope is reached (the API cancels a PENDING task there). */
  readonly dashscope: { readonly baseUrl: string; readonly apiKey: string };
  readonly defaultModel: Model | undefined;
  /**
   * The API's or the trigger's environment as the stack synthesizes it, pointed at the owner's
   * parts and this process's DashScope key: what their specs parse.
   */
  environment(name: FrontDoor): Record<string, string | undefined>;
  health(): Promise<EngineHealth>;
  /**
   * Stops this process's part: the owner suspends what it runs (each stays recorded as running,
   * for the next owner to redrive), closes its servers and gives up the lock. Returns how many
   * executions were left running.
   */
  close(options?: CloseOptions): Promise<{ readonly unfinished: number }>;
}

export interface CloseOptions {
  /**
   * Told how many executions were left running as soon as they are stopped, before the servers
   * close (a command says what resumes even if closing the rest takes long).
   */
  readonly onSuspended?: (unfinished: number) => void;
}

export interface EngineAdmission {
  readonly queue: AdmissionQueue;
  readonly settings: AdmissionSettings;
}

export interface EngineS3 {
  readonly endpoint: string;
  readonly bucket: string;
  readonly client: ReturnType<typeof localS3Client>;
}

/** The execution port, wherever the executions run, plus waiting for one to end. */
export interface LocalEngineExecutions extends EngineClient {
  /** Settles once the execution has ended (a follower asks the owner every half second). */
  settled(name: string): Promise<ExecutionRecord | undefined>;
}

const LOCK = 'engine.lock';
const ANNOUNCEMENT = 'engine.json';

/** The states an execution passes before it holds a slot: redriven from one, it queues again. */
const BEFORE_ADMISSION: ReadonlySet<string> = new Set([
  STATE_NAMES.init,
  STATE_NAMES.applyDefaults,
  STATE_NAMES.admit,
]);

/**
 * Opens the engine of `options.localDir`: as its owner when no live process owns it, else as a
 * follower of the process that does.
 */
export async function openLocalEngine(options: LocalEngineOptions): Promise<LocalEngine> {
  const logger = options.logger ?? silentLogger;
  let current = await connect(options);
  let closing = false;
  let promoting: Promise<void> | undefined;
  const events = createLocalEventSink(options.eventsFile);

  /** The owner went away: become the owner, or follow whoever did. */
  const takeOver = (): Promise<void> => {
    promoting ??= (async () => {
      const previous = current;
      logger.warn('The local engine owner stopped answering; taking over', { pid: previous.owner.pid });
      current = await connect(options);
      await previous.close().catch(() => {});
      if (current.role === 'owner' && current.recovery) options.onPromoted?.(current.recovery);
    })().finally(() => {
      promoting = undefined;
    });
    return promoting;
  };
  /** Runs `call` on the current backend; a follower whose owner is gone takes over and runs it again. */
  const onCurrent = async <T>(call: (backend: Backend) => Promise<T>): Promise<T> => {
    for (;;) {
      const backend = current;
      try {
        return await call(backend);
      } catch (error) {
        if (closing || backend.role !== 'follower' || !(error instanceof EngineUnreachableError)) throw error;
        if (await backend.ownerAnswers()) throw error;
        if (current === backend) await takeOver();
      }
    }
  };
  // A follower checks on its owner every 2 s, so it takes over even while idle.
  const watch = setInterval(() => {
    const backend = current;
    if (closing || backend.role !== 'follower' || promoting) return;
    void backend.ownerAnswers().then((answers) => {
      if (!answers && !closing && current === backend) void takeOver().catch(() => {});
    });
  }, 2000);
  watch.unref();

  const executions: LocalEngineExecutions = {
    start: (name, input) => onCurrent((backend) => backend.executions.start(name, input)),
    describe: (name) => onCurrent((backend) => backend.executions.describe(name)),
    stop: (name, reason) => onCurrent((backend) => backend.executions.stop(name, reason)),
    health: () => onCurrent((backend) => backend.health()),
    async settled(name) {
      for (;;) {
        const backend = current;
        if (backend.pipeline) {
          await backend.pipeline.executions.settled(name);
          if (current === backend) return backend.pipeline.executions.describe(name);
          continue;
        }
        const record = await onCurrent((b) => b.executions.describe(name));
        if (record?.status !== 'RUNNING') return record;
        await sleep(500);
      }
    },
  };

  return {
    get role() {
      return current.role;
    },
    get owner() {
      return current.owner;
    },
    get pipeline() {
      return current.pipeline;
    },
    get recovery() {
      return current.recovery;
    },
    clock: options.virtualWaits ?? systemClock,
    index: delegate(() => current.index),
    batches: delegate(() => current.batches),
    admission: {
      queue: delegate(() => current.admission.queue),
      get settings() {
        return current.admission.settings;
      },
    },
    get dashscope() {
      return current.dashscope;
    },
    get defaultModel() {
      return current.owner.defaultModel;
    },
    environment: (name) => current.environment(name),
    executions,
    s3: delegate(() => current.s3),
    events: {
      get events() {
        return current.pipeline?.events.events ?? events.events;
      },
      file: options.eventsFile,
      publish: (detailType, detail) => (current.pipeline?.events ?? events).publish(detailType, detail),
    },
    health: () => executions.health(),
    async close(closeOptions) {
      closing = true;
      clearInterval(watch);
      await promoting?.catch(() => {});
      return current.close(closeOptions);
    },
  };
}

/** One process's side of the engine: what it runs (owner) or whom it follows. */
interface Backend {
  readonly role: 'owner' | 'follower';
  readonly owner: EngineAnnouncement;
  readonly pipeline: LocalPipeline | undefined;
  readonly recovery: RecoveryReport | undefined;
  readonly index: GenerationIndex;
  readonly batches: BatchIndex;
  readonly executions: EngineClient;
  readonly s3: EngineS3;
  readonly admission: EngineAdmission;
  readonly dashscope: { readonly baseUrl: string; readonly apiKey: string };
  environment(name: FrontDoor): Record<string, string | undefined>;
  health(): Promise<EngineHealth>;
  ownerAnswers(): Promise<boolean>;
  close(options?: CloseOptions): Promise<{ unfinished: number }>;
}

/** The owner's backend if the lock is free, else a follower's of the live owner. */
async function connect(options: LocalEngineOptions): Promise<Backend> {
  const deadline = Date.now() + (options.ownerStartTimeoutMs ?? 180_000);
  for (;;) {
    const lock = await tryLock(options.localDir);
    if (lock) {
      try {
        return await startOwner(options, lock);
      } catch (error) {
        await lock.release();
        throw error;
      }
    }
    const announced = await readAnnouncement(options.localDir);
    if (announced && isAlive(announced.pid)) {
      const client = engineClient(announced.channel);
      if (await answers(client)) return follower(options, announced, client);
    }
    if (Date.now() > deadline) {
      throw new Error(
        `Another process holds the local engine in ${options.localDir} but does not answer` +
          (announced ? ` (PID ${announced.pid}, ${announced.channel.url})` : '') +
          '; stop it (npm start, npm run generate) and try again',
      );
    }
    await sleep(200);
  }
}

/** The ways in the engine builds in every process, owner or follower: the API, the request-file trigger. */
export type FrontDoor = 'api' | 'trigger';

/** An environment without its DashScope keys, for `engine.json`: each process adds its own. */
function withoutKeys(environment: Record<string, string | undefined>): Record<string, string> {
  const { DASHSCOPE_API_KEY: _key, DASHSCOPE_ACCOUNTS: _accounts, ...rest } = environment;
  return Object.fromEntries(
    Object.entries(rest).filter((entry): entry is [string, string] => entry[1] !== undefined),
  );
}

function follower(
  options: LocalEngineOptions,
  owner: EngineAnnouncement,
  client: ReturnType<typeof engineClient>,
): Backend {
  const dynamo = localDynamoClient(owner.dynamo.endpoint);
  const s3 = localS3Client(owner.s3.endpoint);
  return {
    role: 'follower',
    owner,
    pipeline: undefined,
    recovery: undefined,
    index: createDynamoGenerationIndex(dynamo, LOCAL_TABLE),
    batches: createDynamoBatchIndex(dynamo, LOCAL_TABLE),
    admission: { queue: createDynamoAdmissionQueue(dynamo, LOCAL_TABLE), settings: owner.admission },
    dashscope: {
      baseUrl: owner.dashscope.baseUrl,
      apiKey: owner.dashscope.emulatorKey ?? options.dashscopeApiKey ?? '',
    },
    environment: (name) => ({
      ...owner.environments[name],
      DASHSCOPE_BASE_URL: owner.dashscope.baseUrl,
      DASHSCOPE_API_KEY: owner.dashscope.emulatorKey ?? options.dashscopeApiKey,
    }),
    executions: client,
    s3: { endpoint: owner.s3.endpoint, bucket: owner.s3.bucket, client: s3 },
    health: () => client.health(),
    ownerAnswers: () => answers(client),
    async close() {
      dynamo.destroy();
      s3.destroy();
      return { unfinished: 0 };
    },
  };
}

async function startOwner(options: LocalEngineOptions, lock: { release(): Promise<void> }): Promise<Backend> {
  const { localDir } = options;
  const pipeline = await startLocalPipeline({
    ...options,
    executionsDirectory: options.executionsDirectory ?? path.join(localDir, 'executions'),
    emulatorStateFile: options.emulatorStateFile ?? path.join(localDir, 'emulator', 'tasks.jsonl'),
  });
  let channel: ChannelServer | undefined;
  let sweep: NodeJS.Timeout | undefined;
  let watch: RequestFileWatch | undefined;
  try {
    const recovery = await recover(pipeline, options.logger ?? silentLogger);
    const startedAt = new Date().toISOString();
    const health = () => ownerHealth(pipeline, { pid: process.pid, kind: options.kind, startedAt });
    channel = await serveEngineChannel(pipeline.executions, health);
    const owner: EngineAnnouncement = {
      pid: process.pid,
      kind: options.kind,
      startedAt,
      channel: { url: channel.url, token: channel.token },
      s3: { endpoint: pipeline.s3.endpoint, bucket: pipeline.s3.bucket },
      dynamo: { endpoint: pipeline.dynamo.endpoint },
      dashscope: {
        baseUrl: pipeline.dashscope.baseUrl,
        emulator: pipeline.emulator !== undefined,
        emulatorKey: pipeline.emulator?.apiKey,
      },
      admission: pipeline.runner.admission.settings,
      defaultModel: pipeline.runner.defaultModel,
      api: options.apiUrl?.(),
      environments: {
        api: withoutKeys(pipeline.runner.environment('api')),
        trigger: withoutKeys(pipeline.runner.environment('trigger')),
      },
    };
    // A request file stored under requests/ starts, as S3 → EventBridge → the trigger do on AWS.
    watch = watchPipelineRequestFiles(pipeline, options.logger ?? silentLogger);
    await announce(localDir, owner);
    // On AWS a schedule runs the dispatcher every minute besides its kicks; so does the owner.
    sweep = setInterval(() => void pipeline.runner.admission.dispatcher.kick(), 60_000);
    sweep.unref();
    const openChannel = channel;
    const openSweep = sweep;
    const openWatch = watch;
    return {
      role: 'owner',
      owner,
      pipeline,
      recovery,
      index: pipeline.index,
      batches: pipeline.batches,
      executions: { ...pipeline.executions, health },
      s3: pipeline.s3,
      admission: pipeline.runner.admission,
      dashscope: { baseUrl: pipeline.dashscope.baseUrl, apiKey: pipeline.dashscope.apiKey },
      environment: (name) => pipeline.runner.environment(name),
      health,
      ownerAnswers: async () => true,
      async close(closeOptions) {
        clearInterval(openSweep);
        // The executions first: what stands where it is recorded is what the next owner redrives.
        const unfinished = await pipeline.executions.suspendAll();
        closeOptions?.onSuspended?.(unfinished);
        await openChannel.close();
        await openWatch.close();
        await pipeline.close();
        await withdraw(localDir);
        await lock.release();
        return { unfinished };
      },
    };
  } catch (error) {
    clearInterval(sweep);
    await channel?.close();
    await watch?.close();
    await pipeline.executions.suspendAll();
    await pipeline.close();
    throw error;
  }
}

/**
 * What a new owner does first: it redrives every execution the store holds as running; it ends,
 * as `interrupted`, every generation the index shows unfinished that no execution will finish
 * (nothing recorded where it stood); and it records the ends that had not reached the index. The
 * dispatcher is held meanwhile, so it grants no slot to a task token of the previous process.
 */
export async function recover(pipeline: LocalPipeline, logger: Logger): Promise<RecoveryReport> {
  const { runner, executions } = pipeline;
  const hold = runner.admission.dispatcher.hold();
  try {
    const resumed = executions.resumeAll();
    const interrupted: string[] = [];
    const reconciled: string[] = [];
    const resumedIds = new Set(resumed.map(({ execution }) => execution.name));
    for (const record of await unfinished(pipeline.index)) {
      if (resumedIds.has(record.id)) continue;
      const execution = await executions.describe(record.id);
      if (execution?.status === 'RUNNING') continue;
      const startDate = execution?.startDate.getTime() ?? Date.parse(record.createdAt);
      if (execution) {
        await runner.recordEnd(record.id, startDate, execution.input, {
          status:
            execution.status === 'SUCCEEDED'
              ? 'SUCCEEDED'
              : execution.status === 'FAILED'
                ? 'FAILED'
                : 'ABORTED',
          output: execution.output === undefined ? null : JSON.stringify(execution.output),
          error: execution.error ?? null,
          cause: execution.cause ?? null,
        });
        reconciled.push(record.id);
        continue;
      }
      await runner.recordEnd(record.id, startDate, record.request ?? {}, {
        status: 'ABORTED',
        error: EXECUTION_INTERRUPTED,
        cause:
          'The local engine that ran this generation stopped, and nothing recorded where it stood (it was started by an older version, or its record was lost)',
      });
      interrupted.push(record.id);
    }
    await Promise.all(
      resumed
        .filter(({ execution }) => BEFORE_ADMISSION.has(execution.checkpoint?.state ?? ''))
        .map(({ queued }) => queued),
    );
    const report = { resumed: [...resumedIds], interrupted, reconciled };
    if (resumedIds.size + interrupted.length + reconciled.length > 0) {
      logger.info('Local engine recovered', {
        resumed: resumedIds.size,
        interrupted: interrupted.length,
        reconciled: reconciled.length,
      });
    }
    return report;
  } finally {
    hold.release();
  }
}

/** Every generation the index shows queued or running. */
async function unfinished(index: GenerationIndex): Promise<GenerationRecord[]> {
  const found: GenerationRecord[] = [];
  for (const status of ['queued', 'running'] as const) {
    let after: { createdAt: string; id: string } | undefined;
    for (;;) {
      const page = await index.list({ status, limit: 50, after });
      found.push(...page.items);
      const last = page.items.at(-1);
      if (!page.more || !last) break;
      after = { createdAt: last.createdAt, id: last.id };
    }
  }
  return found;
}

async function ownerHealth(pipeline: LocalPipeline, owner: EngineHealth['owner']): Promise<EngineHealth> {
  const { queue, settings } = pipeline.runner.admission;
  const waiting = await Promise.all(LANES.map((lane) => queue.count(lane)));
  const slots = (await Promise.all(settings.accounts.map((account) => queue.slots(account.name)))).flat();
  // A generation holding a slot that no write has touched for longer than its run plus a margin.
  const now = pipeline.clock.now();
  const stalled: { id: string; quietSeconds: number; expectedRunSeconds: number }[] = [];
  for (const slot of slots) {
    const record = await pipeline.index.get(slot.id);
    const since = Math.max(slot.grantedAt, record ? Date.parse(record.updatedAt) : 0);
    const quietMs = now - since;
    if (quietMs > (slot.expectedRunSeconds + STALL_MARGIN_SECONDS) * 1000) {
      stalled.push({
        id: slot.id,
        quietSeconds: Math.round(quietMs / 1000),
        expectedRunSeconds: slot.expectedRunSeconds,
      });
    }
  }
  return {
    owner,
    executions: pipeline.executions.runningCount,
    waiting: waiting.reduce((sum, count) => sum + count, 0),
    granted: slots.filter((slot) => slot.submittedAt === undefined).length,
    /** Submits sent whose answer has not been noted yet. */
    submitting: slots.filter((slot) => slot.submitAttemptAt !== undefined && slot.taskId === undefined)
      .length,
    running: slots.filter((slot) => slot.submittedAt !== undefined).length,
    stalled,
    memory: memoryOf(process.memoryUsage()),
  };
}

/** The owner's memory, MiB: what `bench:load --via-api` and a user watching a long run read. */
function memoryOf(usage: NodeJS.MemoryUsage) {
  const mib = (bytes: number) => Math.round(bytes / 2 ** 20);
  return {
    rssMiB: mib(usage.rss),
    heapUsedMiB: mib(usage.heapUsed),
    heapTotalMiB: mib(usage.heapTotal),
    externalMiB: mib(usage.external),
    arrayBuffersMiB: mib(usage.arrayBuffers),
  };
}

/** How long past its expected run a generation may go without any write before health calls it stalled. */
const STALL_MARGIN_SECONDS = 300;

/** Takes the folder's engine lock if no live process holds it; the OS frees it when the process ends. */
async function tryLock(localDir: string): Promise<{ release(): Promise<void> } | undefined> {
  await mkdir(localDir, { recursive: true });
  const db = new ClassicLevel(path.join(localDir, LOCK));
  try {
    await db.open();
  } catch (error) {
    const code = (error as { cause?: { code?: string } }).cause?.code;
    if (code === 'LEVEL_LOCKED') return undefined;
    throw error;
  }
  return { release: () => db.close() };
}

async function announce(localDir: string, owner: EngineAnnouncement): Promise<void> {
  const file = path.join(localDir, ANNOUNCEMENT);
  const temporary = `${file}.${process.pid}.tmp`;
  await writeFile(temporary, `${JSON.stringify(owner, null, 2)}\n`, { mode: 0o600 });
  await rename(temporary, file);
}

/** Removes this process's announcement (it stops owning the folder). */
async function withdraw(localDir: string): Promise<void> {
  const announced = await readAnnouncement(localDir);
  if (announced?.pid === process.pid) await rm(path.join(localDir, ANNOUNCEMENT), { force: true });
}

/** The owner's announcement, if `engine.json` holds a valid one. */
export async function readAnnouncement(localDir: string): Promise<EngineAnnouncement | undefined> {
  try {
    return announcementSchema.parse(JSON.parse(await readFile(path.join(localDir, ANNOUNCEMENT), 'utf8')));
  } catch {
    return undefined;
  }
}

async function answers(client: Pick<ReturnType<typeof engineClient>, 'alive'>): Promise<boolean> {
  try {
    await client.alive();
    return true;
  } catch {
    return false;
  }
}

/** An object that forwards every property read to whatever `target()` is at that moment. */
export function delegate<T extends object>(target: () => T): T {
  return new Proxy({} as T, {
    get(_, key) {
      const object = target();
      const value = Reflect.get(object, key);
      return typeof value === 'function' ? value.bind(object) : value;
    },
  });
}
