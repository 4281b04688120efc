import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import type { Server, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import {
  type AttributeDefinition,
  type AttributeValue,
  BatchWriteItemCommand,
  CreateTableCommand,
  DeleteTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  type GlobalSecondaryIndex,
  type KeySchemaElement,
  ListTablesCommand,
  ResourceNotFoundException,
  ScanCommand,
  waitUntilTableExists,
  waitUntilTableNotExists,
} from '@aws-sdk/client-dynamodb';
import dynalite from 'dynalite';

/** A DynamoDB-compatible server on this machine (dynalite), or one this process shares. */
export interface LocalDynamo {
  /** `http://127.0.0.1:PORT` */
  readonly endpoint: string;
  readonly client: DynamoDBClient;
  /** Whether another process runs the server (this one only uses it). */
  readonly shared: boolean;
  close(): Promise<void>;
}

/** Where the server of a data folder announces itself: `<folder>.server.json`. */
const announcementOf = (directory: string) => `${directory}.server.json`;

/** A client for a local endpoint: static credentials, no retries beyond the SDK's few. */
export function localDynamoClient(endpoint: string): DynamoDBClient {
  return new DynamoDBClient({
    endpoint,
    region: 'us-east-1',
    credentials: { accessKeyId: 'LOCAL', secretAccessKey: 'LOCAL' },
  });
}

/**
 * Starts dynalite on 127.0.0.1: in memory without a `directory`, or persisted in it (LevelDB).
 * LevelDB allows one process per folder, so a persisted server announces its endpoint next to
 * its folder, and a second process (`npm run generate` while `npm start` runs) uses that server
 * instead of opening the folder again. The owner removes the announcement when it closes.
 */
export async function startLocalDynamo(options: { directory?: string } = {}): Promise<LocalDynamo> {
  const { directory } = options;
  if (directory) {
    const running = await runningServer(directory);
    if (running) {
      const client = localDynamoClient(running);
      return { endpoint: running, client, shared: true, close: async () => client.destroy() };
    }
    await mkdir(directory, { recursive: true });
  }
  const { server, db, idle } = startDynalite({
    ...(directory ? { path: directory } : {}),
    createTableMs: 0,
    deleteTableMs: 0,
  });
  if (directory) await openAndCompact(db, directory);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  if (directory) {
    await writeFile(announcementOf(directory), `${JSON.stringify({ endpoint, pid: process.pid })}\n`);
  }
  const client = localDynamoClient(endpoint);
  return {
    endpoint,
    client,
    shared: false,
    async close() {
      client.destroy();
      if (directory) await rm(announcementOf(directory), { force: true });
      // Requests dynalite has taken finish first: closing closes its database, and an operation
      // that reaches a closed one throws where nothing can catch it (an uncaught exception).
      server.closeIdleConnections();
      await idle(5_000);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** The part of dynalite's store (`dynalite/db`'s `create`) this file uses: its LevelDB. */
interface DynaliteStore {
  readonly db: DynaliteLevel;
}

/** dynalite's `level` database: classic-level on disk, memory-level in memory. */
interface DynaliteLevel {
  open(): Promise<void>;
  keys(options?: unknown): LevelIterator;
  values(options?: unknown): LevelIterator;
  compactRange(start: unknown, end: unknown, options: { keyEncoding: 'buffer' }): Promise<void>;
}

interface LevelIterator {
  close(): Promise<void>;
  return?: () => Promise<void>;
}

/** Above every key dynalite writes: keys are UTF-8 text, which never holds the byte 0xFF. */
const EVERY_KEY_BELOW = Buffer.from([0xff]);

const requireHere = createRequire(import.meta.url);

/**
 * Starts dynalite and returns its LevelDB too, with the leak of its streams fixed.
 *
 * dynalite 4 reads every Query, Scan and ListTables through a stream over an abstract-level
 * iterator, and ends the iterator with `iterator.return()`, a method abstract-level's iterators
 * do not have: no iterator is ever closed. Each open classic-level iterator holds a LevelDB
 * snapshot and a version of the files, so compaction keeps every overwritten value and deletes
 * no file it replaced, and the process keeps those files mapped and what the iterators hold: after
 * 1,000 generations, 3,000 open iterators (one per Query), a folder of 300–400 MB and 450–500 MB
 * more RSS (docs/performance.md).
 * Giving each iterator the `return()` dynalite calls closes it when its stream ends.
 *
 * dynalite does not expose its store, so it is taken from `dynalite/db`, the module dynalite
 * creates it with, for the length of the (synchronous) call.
 */
function startDynalite(options: Parameters<typeof dynalite>[0]): {
  server: Server;
  db: DynaliteLevel;
  /** Resolves when no request is being answered, or after `timeoutMs`. */
  idle(timeoutMs: number): Promise<void>;
} {
  const stores = requireHere('dynalite/db') as { create: (options: unknown) => DynaliteStore };
  const create = stores.create;
  let store: DynaliteStore | undefined;
  stores.create = (storeOptions) => {
    store = create(storeOptions);
    return store;
  };
  let server: Server;
  try {
    server = dynalite(options) as Server;
  } finally {
    stores.create = create;
  }
  if (!store)
    throw new Error('dynalite no longer creates its store through dynalite/db: update local/dynamodb.ts');
  const { db } = store;
  for (const method of ['keys', 'values'] as const) {
    const open = db[method].bind(db);
    db[method] = (iteratorOptions) => {
      const iterator = open(iteratorOptions);
      iterator.return ??= () => iterator.close();
      return iterator;
    };
  }
  return { server, db, idle: countRequests(server) };
}

/**
 * Opens the folder's LevelDB and compacts all of it once: a folder older versions of this file
 * left (every overwritten value their open iterators pinned) shrinks to its live data, 394 MB to
 * 4 MB in 0.2–0.4 s after 1,000 generations; a healthy folder of 1,000 takes about 0.1 s.
 */
async function openAndCompact(db: DynaliteLevel, directory: string): Promise<void> {
  try {
    await db.open();
  } catch (error) {
    const locked = (error as { cause?: { code?: unknown } }).cause?.code === 'LEVEL_LOCKED';
    throw new Error(
      locked
        ? `Another process holds the local DynamoDB data in ${directory}; stop it (npm start, npm run generate) and try again`
        : `Cannot open the local DynamoDB data in ${directory}: ${(error as Error).message}`,
      { cause: error },
    );
  }
  await db.compactRange('', EVERY_KEY_BELOW, { keyEncoding: 'buffer' });
}

/** The endpoint of a live server another process runs on `directory`, if any. */
async function runningServer(directory: string): Promise<string | undefined> {
  let announced: { endpoint?: unknown; pid?: unknown };
  try {
    announced = JSON.parse(await readFile(announcementOf(directory), 'utf8'));
  } catch {
    return undefined;
  }
  const { endpoint, pid } = announced;
  if (typeof endpoint !== 'string' || typeof pid !== 'number' || pid === process.pid) return undefined;
  if (!isAlive(pid)) return undefined;
  const client = localDynamoClient(endpoint);
  try {
    await client.send(new ListTablesCommand({ Limit: 1 }));
    return endpoint;
  } catch {
    throw new Error(
      `Another process (PID ${pid}) holds the local DynamoDB data in ${directory} but does not answer at ${endpoint}; stop it (npm start, npm run generate) and try again`,
    );
  } finally {
    client.destroy();
  }
}

/** Whether a process with this PID exists (one of another user counts). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The parts of an `AWS::DynamoDB::Table` resource a local table is created from. */
export interface TableTemplate {
  readonly KeySchema: KeySchemaElement[];
  readonly AttributeDefinitions: AttributeDefinition[];
  readonly GlobalSecondaryIndexes?: GlobalSecondaryIndex[];
}

/**
 * Creates the table from its CloudFormation definition (keys, attributes and indexes as the
 * synthesized stack declares them, never a hand copy) unless it exists. A table an older version
 * created without some of the indexes is rebuilt with its items (dynalite cannot add an index to
 * a table; DynamoDB itself gets them from CloudFormation).
 */
export async function ensureTable(
  client: DynamoDBClient,
  name: string,
  definition: TableTemplate,
): Promise<void> {
  let existing: string[] | undefined;
  try {
    const described = await client.send(new DescribeTableCommand({ TableName: name }));
    existing = (described.Table?.GlobalSecondaryIndexes ?? []).map((index) => index.IndexName ?? '');
    if (described.Table?.TableStatus === 'DELETING') {
      // A rebuild that stopped half way (the process ended before dynalite dropped the table):
      // delete it again, which completes, and create it afresh.
      await client.send(new DeleteTableCommand({ TableName: name }));
      await waitUntilTableNotExists(
        { client, maxWaitTime: 300, minDelay: 0.05, maxDelay: 0.5 },
        { TableName: name },
      );
      existing = undefined;
    }
  } catch (error) {
    if (!(error instanceof ResourceNotFoundException)) throw error;
  }
  const wanted = (definition.GlobalSecondaryIndexes ?? []).map((index) => index.IndexName ?? '');
  if (existing && wanted.every((index) => existing.includes(index))) return;
  const items = existing ? await scanAll(client, name) : [];
  if (existing) {
    await client.send(new DeleteTableCommand({ TableName: name }));
    await waitUntilTableNotExists(
      { client, maxWaitTime: 300, minDelay: 0.05, maxDelay: 0.5 },
      { TableName: name },
    );
  }
  await client
    .send(
      new CreateTableCommand({
        TableName: name,
        KeySchema: definition.KeySchema,
        AttributeDefinitions: definition.AttributeDefinitions,
        BillingMode: 'PAY_PER_REQUEST',
        ...(definition.GlobalSecondaryIndexes
          ? {
              GlobalSecondaryIndexes: definition.GlobalSecondaryIndexes.map(
                ({ IndexName, KeySchema, Projection }) => ({
                  IndexName,
                  KeySchema,
                  Projection,
                }),
              ),
            }
          : {}),
      }),
    )
    .catch((error: unknown) => {
      // Another process created it first.
      if ((error as Error).name !== 'ResourceInUseException') throw error;
    });
  await waitUntilTableExists(
    { client, maxWaitTime: 300, minDelay: 0.05, maxDelay: 0.5 },
    { TableName: name },
  );
  for (let i = 0; i < items.length; i += 25) {
    const batch = items.slice(i, i + 25).map((Item) => ({ PutRequest: { Item } }));
    await client.send(new BatchWriteItemCommand({ RequestItems: { [name]: batch } }));
  }
}

async function scanAll(client: DynamoDBClient, name: string): Promise<Record<string, AttributeValue>[]> {
  const items: Record<string, AttributeValue>[] = [];
  let start: Record<string, AttributeValue> | undefined;
  do {
    const page = await client.send(new ScanCommand({ TableName: name, ExclusiveStartKey: start }));
    items.push(...(page.Items ?? []));
    start = page.LastEvaluatedKey;
  } while (start);
  return items;
}

/**
 * Counts the requests `server` is answering (taken, and not yet ended by its handler, whether or
 * not the client is still there), and returns a wait for none.
 */
function countRequests(server: Server): (timeoutMs: number) => Promise<void> {
  const handlers = server.listeners('request') as ((request: unknown, response: ServerResponse) => void)[];
  server.removeAllListeners('request');
  let answering = 0;
  const waiting = new Set<() => void>();
  server.on('request', (request, response: ServerResponse) => {
    answering += 1;
    let ended = false;
    const end = response.end.bind(response);
    response.end = ((...args: Parameters<ServerResponse['end']>) => {
      if (!ended) {
        ended = true;
        answering -= 1;
        if (answering === 0) for (const resolve of waiting) resolve();
      }
      return end(...args);
    }) as ServerResponse['end'];
    for (const handler of handlers) handler.call(server, request, response);
  });
  return (timeoutMs) =>
    answering === 0
      ? Promise.resolve()
      : new Promise<void>((resolve) => {
          const done = () => {
            clearTimeout(timer);
            waiting.delete(done);
            resolve();
          };
          const timer = setTimeout(done, timeoutMs);
          waiting.add(done);
        });
}
