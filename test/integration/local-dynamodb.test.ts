import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DescribeTableCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDynamoGenerationIndex } from '../../functions/shared/aws/dynamodb-index.js';
import { ensureTable, type LocalDynamo, startLocalDynamo, type TableTemplate } from '../../local/dynamodb.js';
import { generationsTableDefinition } from '../../local/runner.js';
import { synthesize } from '../infra/template.js';

/** The local table follows the stack's definition, also across versions of the project. */
let dir: string;
let dynamo: LocalDynamo;
const definition = generationsTableDefinition(
  synthesize().template.toJSON() as Parameters<typeof generationsTableDefinition>[0],
);

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'local-dynamodb-'));
  dynamo = await startLocalDynamo({ directory: dir });
});

afterAll(async () => {
  await dynamo?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('ensureTable', () => {
  it('rebuilds a table an older version made without some indexes, keeping its items', async () => {
    const older: TableTemplate = {
      ...definition,
      GlobalSecondaryIndexes: definition.GlobalSecondaryIndexes?.filter((index) =>
        ['byCreated', 'byStatus'].includes(index.IndexName ?? ''),
      ),
    };
    await ensureTable(dynamo.client, 'upgraded', older);
    const index = createDynamoGenerationIndex(dynamo.client, 'upgraded');
    await index.register({
      id: 'gen-old',
      createdAt: '2026-11-01T00:00:00.000Z',
      source: 'api',
      request: { prompt: 'kept across the upgrade' },
    });

    await ensureTable(dynamo.client, 'upgraded', definition);

    const described = await dynamo.client.send(new DescribeTableCommand({ TableName: 'upgraded' }));
    expect(described.Table?.GlobalSecondaryIndexes?.map((i) => i.IndexName).sort()).toEqual(
      definition.GlobalSecondaryIndexes?.map((i) => i.IndexName).sort(),
    );
    expect((await index.get('gen-old'))?.request).toEqual({ prompt: 'kept across the upgrade' });
    expect((await index.list({ limit: 10 })).items.map((item) => item.id)).toEqual(['gen-old']);
  });

  it('leaves a table that has every index as it is', async () => {
    await ensureTable(dynamo.client, 'current', definition);
    const index = createDynamoGenerationIndex(dynamo.client, 'current');
    await index.register({
      id: 'gen-1',
      createdAt: '2026-11-01T00:00:00.000Z',
      source: 'api',
      request: { prompt: 'x' },
    });

    await ensureTable(dynamo.client, 'current', definition);

    expect(await index.get('gen-1')).toBeDefined();
  });
});
