import { ConditionalCheckFailedException, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { BatchGetCommand, GetCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import {
  BATCH_INDEX,
  BATCH_LIST_PARTITION,
  BatchConflictError,
  type BatchCounts,
  type BatchIndex,
  type BatchRecord,
  type BatchSummary,
  batchCountKey,
  batchItemId,
  batchSummarySchema,
  COUNT_KEYS,
  type CountKey,
} from '../batch.js';
import { type GenerationRecord, generationRecordSchema, INDEX_KEY, INDEX_NAME } from '../generation-index.js';
import { applied, documentClientOf, guardedCalls, queryAll } from './dynamodb-documents.js';

/** The attributes of a batch's item that are keys, not part of its record. */
const KEY_ATTRIBUTES = ['id', INDEX_KEY.listPartition, INDEX_KEY.sort, 'batchStatus', 'batchId'] as const;
/** Attributes of a generation's item that are keys, not part of its record. */
const GENERATION_KEYS = [
  INDEX_KEY.listPartition,
  INDEX_KEY.sort,
  'requestHash',
  BATCH_INDEX.partition,
  BATCH_INDEX.sort,
];

/**
 * The most open lines {@link BatchIndex.allEnded} reads one by one. More lines shown open than
 * this means the batch has not ended: the index lags a write by far less than that many ends.
 */
const OPEN_LINES_READ = 100;

/**
 * The DynamoDB adapter of {@link BatchIndex}: one item per batch (`batch#<id>`) in the
 * generations table, listed through `byCreated` in a partition of its own; its generations found
 * through the keys-only `byBatch` index, partitioned by batch and count
 * (docs/decisions/0034-batches.md).
 *
 * The batch's status is kept as `batchStatus`, out of `byStatus`, whose partitions are the
 * generations' statuses.
 */
export function createDynamoBatchIndex(client: DynamoDBClient, tableName: string): BatchIndex {
  const documents = documentClientOf(client);
  const call = guardedCalls('Batches index');

  /** Every key of the batch's generations in `count`, or with `Select: COUNT` how many (paged). */
  const inCount = (batchId: string, count: CountKey, select?: 'COUNT') =>
    queryAll(documents, call, {
      TableName: tableName,
      IndexName: BATCH_INDEX.name,
      KeyConditionExpression: '#p = :p',
      ExpressionAttributeNames: { '#p': BATCH_INDEX.partition },
      ExpressionAttributeValues: { ':p': batchCountKey(batchId, count) },
      ...(select ? { Select: select } : {}),
    });
  /** How many of the batch's generations are in `count`. */
  const countIn = async (batchId: string, count: CountKey) => (await inCount(batchId, count, 'COUNT')).count;

  /** The live counts: every registered generation counted where it stands; the rest still wait. */
  const countsOf = async (item: Record<string, unknown>): Promise<BatchCounts> => {
    const stored = storedCounts(item);
    if (item.finalCounts) return stored;
    const batchId = item.batchId as string;
    const found = await Promise.all(COUNT_KEYS.map((key) => countIn(batchId, key)));
    const counted = Object.fromEntries(COUNT_KEYS.map((key, i) => [key, found[i] ?? 0])) as Record<
      CountKey,
      number
    >;
    const registered = found.reduce((total, n) => total + n, 0);
    // Lines not registered yet (a request file still being started) wait too; once the batch is
    // cancelled, the trigger starts none of them: they are canceled.
    const unregistered = Math.max(0, stored.total - stored.rejected - registered);
    const into: CountKey = item.batchStatus === 'in_progress' ? 'waiting' : 'canceled';
    return {
      total: stored.total,
      rejected: stored.rejected,
      ...counted,
      [into]: counted[into] + unregistered,
    };
  };

  const summaryOf = (item: Record<string, unknown>): BatchSummary => {
    const fields: Record<string, unknown> = { ...item, id: item.batchId, status: item.batchStatus };
    for (const key of ['finalCounts', 'total', 'rejected', ...COUNT_KEYS.map((k) => `n_${k}`)])
      delete fields[key];
    for (const key of KEY_ATTRIBUTES) if (key !== 'id') delete fields[key];
    return batchSummarySchema.parse(fields);
  };

  const recordOf = async (item: Record<string, unknown>): Promise<BatchRecord> => ({
    ...summaryOf(item),
    counts: await countsOf(item),
  });

  const getItem = async (id: string) =>
    (
      await call('read', () =>
        documents.send(
          new GetCommand({ TableName: tableName, Key: { id: batchItemId(id) }, ConsistentRead: true }),
        ),
      )
    ).Item;

  /** The generations' records by id, in the order asked (strongly consistent when `strong`). */
  const recordsOf = async (ids: readonly string[], strong: boolean): Promise<GenerationRecord[]> => {
    const found = new Map<string, GenerationRecord>();
    for (let i = 0; i < ids.length; i += 100) {
      let keys: Record<string, unknown>[] = ids.slice(i, i + 100).map((id) => ({ id }));
      while (keys.length > 0) {
        const out = await call('read', () =>
          documents.send(
            new BatchGetCommand({ RequestItems: { [tableName]: { Keys: keys, ConsistentRead: strong } } }),
          ),
        );
        for (const item of out.Responses?.[tableName] ?? []) {
          const fields = { ...item };
          for (const key of GENERATION_KEYS) delete fields[key];
          const record = generationRecordSchema.parse(fields);
          found.set(record.id, record);
        }
        keys = (out.UnprocessedKeys?.[tableName]?.Keys as Record<string, unknown>[] | undefined) ?? [];
      }
    }
    return ids.flatMap((id) => found.get(id) ?? []);
  };

  /** One page of a count's line keys, after `afterLine`. */
  const lineKeys = async (batchId: string, count: CountKey, limit: number, afterLine?: number) => {
    const out = await call('query', () =>
      documents.send(
        new QueryCommand({
          TableName: tableName,
          IndexName: BATCH_INDEX.name,
          KeyConditionExpression: `#p = :p${afterLine !== undefined ? ' AND #s > :after' : ''}`,
          ExpressionAttributeNames: {
            '#p': BATCH_INDEX.partition,
            ...(afterLine !== undefined ? { '#s': BATCH_INDEX.sort } : {}),
          },
          ExpressionAttributeValues: {
            ':p': batchCountKey(batchId, count),
            ...(afterLine !== undefined ? { ':after': afterLine } : {}),
          },
          Limit: limit,
        }),
      ),
    );
    return (out.Items ?? []).map((item) => ({
      id: item.id as string,
      line: item[BATCH_INDEX.sort] as number,
    }));
  };

  return {
    async create(batch) {
      const item = {
        id: batchItemId(batch.id),
        batchId: batch.id,
        [INDEX_KEY.listPartition]: BATCH_LIST_PARTITION,
        [INDEX_KEY.sort]: `${batch.createdAt}#${batch.id}`,
        batchStatus: 'in_progress',
        createdAt: batch.createdAt,
        source: batch.source,
        ...(batch.caller ? { caller: batch.caller } : {}),
        priority: batch.priority,
        total: batch.total,
        rejected: batch.rejected,
        ...(batch.metadata ? { metadata: batch.metadata } : {}),
        ...(batch.webhookUrl ? { webhookUrl: batch.webhookUrl } : {}),
        ...(batch.file ? { file: batch.file } : {}),
        fingerprint: batch.fingerprint,
      };
      // An UpdateItem, not a PutItem: every writer of the index holds UpdateItem alone.
      const { id: key, ...fields } = item;
      const names = Object.fromEntries(Object.keys(fields).map((field, i) => [`#f${i}`, field]));
      const created = await applied(() =>
        call('write', () =>
          documents.send(
            new UpdateCommand({
              TableName: tableName,
              Key: { id: key },
              UpdateExpression: `SET ${Object.keys(names)
                .map((name, i) => `${name} = :v${i}`)
                .join(', ')}`,
              ConditionExpression: 'attribute_not_exists(id)',
              ExpressionAttributeNames: names,
              ExpressionAttributeValues: Object.fromEntries(
                Object.values(fields).map((value, i) => [`:v${i}`, value]),
              ),
            }),
          ),
        ),
      );
      if (created) return {};
      const existing = await getItem(batch.id);
      if (!existing) throw new BatchConflictError(`Batch ${batch.id} could not be created`);
      if (existing.fingerprint !== batch.fingerprint) {
        throw new BatchConflictError(`Batch ${batch.id} exists with other requests`);
      }
      return { existing: await recordOf(existing) };
    },

    async get(id) {
      const item = await getItem(id);
      return item ? recordOf(item) : undefined;
    },

    async peek(id) {
      const item = await getItem(id);
      return item ? summaryOf(item) : undefined;
    },

    async list({ limit, after }) {
      const out = await call('query', () =>
        documents.send(
          new QueryCommand({
            TableName: tableName,
            IndexName: INDEX_NAME.byCreated,
            KeyConditionExpression: `#p = :p${after ? ' AND #s < :after' : ''}`,
            ExpressionAttributeNames: {
              '#p': INDEX_KEY.listPartition,
              ...(after ? { '#s': INDEX_KEY.sort } : {}),
            },
            ExpressionAttributeValues: {
              ':p': BATCH_LIST_PARTITION,
              ...(after ? { ':after': `${after.createdAt}#${after.id}` } : {}),
            },
            ScanIndexForward: false,
            Limit: limit + 1,
          }),
        ),
      );
      const items = out.Items ?? [];
      return {
        items: await Promise.all(items.slice(0, limit).map(recordOf)),
        more: items.length > limit,
      };
    },

    async lines(batchId, { count, limit, afterLine }) {
      const counts = count ? [count] : COUNT_KEYS;
      // One more than asked from each count: merged in line order, whether more exist shows.
      const pages = await Promise.all(counts.map((key) => lineKeys(batchId, key, limit + 1, afterLine)));
      const merged = pages.flat().sort((a, b) => a.line - b.line);
      const page = merged.slice(0, limit);
      const records = await recordsOf(
        page.map((entry) => entry.id),
        false,
      );
      return { items: records, more: merged.length > limit };
    },

    async allEnded(batchId) {
      const item = await getItem(batchId);
      if (!item) return false;
      // Only a batch near its end is read line by line: its open lines' keys are read up to
      // OPEN_LINES_READ + 1, so each of a big batch's ends costs a few keys, not the whole batch.
      const open = (
        await Promise.all(
          (['waiting', 'running'] as const).map((key) => lineKeys(batchId, key, OPEN_LINES_READ + 1)),
        )
      ).flat();
      if (open.length > OPEN_LINES_READ) return false;
      // The index may lag a write: those it still shows open are read themselves.
      const records = await recordsOf(
        open.map((entry) => entry.id),
        true,
      );
      if (records.some((record) => record.status === 'queued' || record.status === 'running')) return false;
      if (item.batchStatus !== 'in_progress') return true;
      const stored = storedCounts(item);
      const registered = (await Promise.all(COUNT_KEYS.map((key) => countIn(batchId, key)))).reduce(
        (total, n) => total + n,
        0,
      );
      return registered >= stored.total - stored.rejected;
    },

    async markCancelling(id) {
      try {
        const out = await call('write', () =>
          documents.send(
            new UpdateCommand({
              TableName: tableName,
              Key: { id: batchItemId(id) },
              UpdateExpression: 'SET batchStatus = :cancelling',
              // Once a finisher claimed it, it completes as it is.
              ConditionExpression:
                'attribute_exists(id) AND batchStatus = :inProgress AND attribute_not_exists(completion)',
              ExpressionAttributeValues: { ':cancelling': 'cancelling', ':inProgress': 'in_progress' },
              ReturnValues: 'ALL_NEW',
            }),
          ),
        );
        return out.Attributes ? summaryOf(out.Attributes) : undefined;
      } catch (error) {
        if (!(error instanceof ConditionalCheckFailedException)) throw error;
        const item = await getItem(id);
        return item ? summaryOf(item) : undefined;
      }
    },

    async claimCompletion(id, owner, now, staleBefore) {
      try {
        const out = await call('write', () =>
          documents.send(
            new UpdateCommand({
              TableName: tableName,
              Key: { id: batchItemId(id) },
              UpdateExpression: 'SET completion = :claim',
              ConditionExpression:
                'attribute_exists(id) AND batchStatus IN (:inProgress, :cancelling) AND ' +
                '(attribute_not_exists(completion) OR completion.#owner = :owner OR completion.claimedAt < :stale)',
              ExpressionAttributeNames: { '#owner': 'owner' },
              ExpressionAttributeValues: {
                ':claim': { owner, claimedAt: now },
                ':owner': owner,
                ':stale': staleBefore,
                ':inProgress': 'in_progress',
                ':cancelling': 'cancelling',
              },
              ReturnValues: 'ALL_NEW',
            }),
          ),
        );
        return out.Attributes ? recordOf(out.Attributes) : undefined;
      } catch (error) {
        if (error instanceof ConditionalCheckFailedException) return undefined;
        throw error;
      }
    },

    async complete(id, owner, end) {
      return applied(() =>
        call('write', () =>
          documents.send(
            new UpdateCommand({
              TableName: tableName,
              Key: { id: batchItemId(id) },
              UpdateExpression:
                'SET batchStatus = :final, completedAt = :at, resultsKey = :key, finalCounts = :true, ' +
                COUNT_KEYS.map((key) => `n_${key} = :n_${key}`).join(', ') +
                ' REMOVE completion',
              ConditionExpression: 'completion.#owner = :owner',
              ExpressionAttributeNames: { '#owner': 'owner' },
              ExpressionAttributeValues: {
                ':final': end.status,
                ':at': end.at,
                ':key': end.resultsKey,
                ':true': true,
                ':owner': owner,
                ...Object.fromEntries(COUNT_KEYS.map((key) => [`:n_${key}`, end.counts[key]])),
              },
            }),
          ),
        ),
      );
    },
  };
}

/** The counts kept on the item: total and rejected always, the rest once frozen at the end. */
function storedCounts(item: Record<string, unknown>): BatchCounts {
  const n = (key: string) => (typeof item[key] === 'number' ? (item[key] as number) : 0);
  return {
    total: n('total'),
    rejected: n('rejected'),
    ...(Object.fromEntries(COUNT_KEYS.map((key) => [key, n(`n_${key}`)])) as Record<CountKey, number>),
  };
}
