import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
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
  const server = dynalite({
    ...(directory ? { path: directory } : {}),
    createTableMs: 0,
    deleteTableMs: 0,
  }) as Server;
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
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
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

function isAlive(pid: number): boolean {
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
