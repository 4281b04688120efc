import { ConditionalCheckFailedException, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { GetCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { BATCH_INDEX, batchCountKey, batchOfId, countOf } from '../batch.js';
import {
  type GenerationIndex,
  type GenerationRecord,
  generationRecordSchema,
  INDEX_KEY,
  INDEX_NAME,
  LIST_PARTITION,
  RegistrationConflictError,
  requestHashOf,
  STAGE,
} from '../generation-index.js';
import { conditionalUpdate, documentClientOf, guardedCalls } from './dynamodb-documents.js';

/** `createdAt#id`: the sort key of both indexes, newest first when read backwards. */
const sortKeyOf = (createdAt: string, id: string) => `${createdAt}#${id}`;

/** Fields the adapter adds for the keys; not part of a record. */
const KEY_ATTRIBUTES = [
  INDEX_KEY.listPartition,
  INDEX_KEY.sort,
  'requestHash',
  BATCH_INDEX.partition,
  BATCH_INDEX.sort,
] as const;

/**
 * The DynamoDB adapter of {@link GenerationIndex}: one table keyed by `id`, with two global
 * secondary indexes sorted by `createdKey` (`createdAt#id`): `byCreated` (every generation, one
 * partition) and `byStatus` (partitioned by status). Every write is one conditional UpdateItem,
 * so a stale stage is refused by DynamoDB itself, whichever writer raced.
 */
export function createDynamoGenerationIndex(client: DynamoDBClient, tableName: string): GenerationIndex {
  const documents = documentClientOf(client);
  const call = guardedCalls('Generations index');

  return {
    async get(id) {
      const out = await call('read', () =>
        documents.send(new GetCommand({ TableName: tableName, Key: { id }, ConsistentRead: true })),
      );
      return out.Item ? recordOf(out.Item) : undefined;
    },

    async register(registration) {
      const createdAt = new Date(registration.createdAt).toISOString();
      const hash = requestHashOf(registration.request);
      const update = new Assignments()
        .setIfAbsent('createdAt', createdAt)
        .setIfAbsent(INDEX_KEY.sort, sortKeyOf(createdAt, registration.id))
        .setIfAbsent(INDEX_KEY.listPartition, LIST_PARTITION)
        .setIfAbsent('source', registration.source)
        .setIfAbsent('request', registration.request)
        .setIfAbsent('requestHash', hash)
        .setIfAbsent('status', 'queued')
        .setIfAbsent('stage', STAGE.registered)
        .setIfAbsent('updatedAt', new Date().toISOString());
      if (registration.caller) update.setIfAbsent('caller', registration.caller);
      const batch = batchOfId(registration.id);
      if (batch) {
        update
          .setIfAbsent(BATCH_INDEX.partition, batchCountKey(batch.batchId, 'waiting'))
          .setIfAbsent(BATCH_INDEX.sort, batch.line);
      }
      const condition = update.condition(
        'attribute_not_exists(#id) OR attribute_not_exists(#requestHash) OR #requestHash = :hash',
        { ':hash': hash },
      );
      let before: Record<string, unknown> | undefined;
      try {
        // ALL_OLD: of concurrent registrations, the one that found no item is the one that created it.
        const out = await call('write', () =>
          documents.send(
            new UpdateCommand({
              TableName: tableName,
              Key: { id: registration.id },
              ...condition,
              ReturnValues: 'ALL_OLD',
            }),
          ),
        );
        before = out.Attributes;
      } catch (error) {
        if (!(error instanceof ConditionalCheckFailedException)) throw error;
        throw new RegistrationConflictError(`Generation ${registration.id} exists with another request`);
      }
      return before ? { existing: recordOf(before) } : {};
    },

    async advance(update) {
      const createdAt = new Date(update.createdAt).toISOString();
      const assignments = new Assignments()
        .set('status', update.status)
        .set('stage', update.stage)
        .set('updatedAt', new Date().toISOString())
        .setIfAbsent('createdAt', createdAt)
        .setIfAbsent(INDEX_KEY.sort, sortKeyOf(createdAt, update.id))
        .setIfAbsent(INDEX_KEY.listPartition, LIST_PARTITION)
        .setIfAbsent('source', update.source);
      if (update.request) {
        assignments
          .setIfAbsent('request', update.request)
          .setIfAbsent('requestHash', requestHashOf(update.request));
      }
      const replaced = {
        progress: update.progress,
        dashscope: update.dashscope,
        images: update.images,
        failedImages: update.failedImages,
        error: update.error,
        manifestKey: update.manifestKey,
        endedAt: update.endedAt,
      };
      for (const [field, value] of Object.entries(replaced)) {
        if (value !== undefined) assignments.set(field, value);
      }
      // A batch's generation carries its count in the same write as its status: the batch's
      // counts are its generations' (docs/decisions/0034-batches.md).
      const batch = batchOfId(update.id);
      if (batch) {
        assignments
          .set(BATCH_INDEX.partition, batchCountKey(batch.batchId, countOf(update)))
          .setIfAbsent(BATCH_INDEX.sort, batch.line);
      }
      const expression = assignments.condition('attribute_not_exists(#id) OR #stage < :stage', {});
      return conditionalUpdate(documents, call, {
        TableName: tableName,
        Key: { id: update.id },
        ...expression,
      });
    },

    async list({ status, limit, after }) {
      const byStatus = status !== undefined;
      const out = await call('query', () =>
        documents.send(
          new QueryCommand({
            TableName: tableName,
            IndexName: byStatus ? INDEX_NAME.byStatus : INDEX_NAME.byCreated,
            KeyConditionExpression: `#partition = :partition${after ? ' AND createdKey < :after' : ''}`,
            ExpressionAttributeNames: { '#partition': byStatus ? INDEX_KEY.status : INDEX_KEY.listPartition },
            ExpressionAttributeValues: {
              ':partition': byStatus ? status : LIST_PARTITION,
              ...(after ? { ':after': sortKeyOf(after.createdAt, after.id) } : {}),
            },
            ScanIndexForward: false,
            // One more than asked: whether it comes back says if another page exists.
            Limit: limit + 1,
          }),
        ),
      );
      const items = (out.Items ?? []).map(recordOf);
      return { items: items.slice(0, limit), more: items.length > limit };
    },
  };
}

/**
 * The SET clauses of one UpdateItem, every attribute through a name placeholder (DynamoDB reserves
 * hundreds of words, `status` and `request` among them) and every value through a value placeholder.
 */
class Assignments {
  readonly #clauses: string[] = [];
  readonly #names: Record<string, string> = {};
  readonly #values: Record<string, unknown> = {};

  set(field: string, value: unknown): this {
    this.#clauses.push(`${this.#name(field)} = ${this.#value(field, value)}`);
    return this;
  }

  /** Sets the field only if the item has none yet (facts of a generation's start). */
  setIfAbsent(field: string, value: unknown): this {
    const name = this.#name(field);
    this.#clauses.push(`${name} = if_not_exists(${name}, ${this.#value(field, value)})`);
    return this;
  }

  /** The UpdateItem parameters, with a condition over the same placeholders plus `extraValues`. */
  condition(expression: string, extraValues: Record<string, unknown>) {
    for (const field of expression.matchAll(/#(\w+)/g)) this.#name(field[1] as string);
    return {
      UpdateExpression: `SET ${this.#clauses.join(', ')}`,
      ConditionExpression: expression,
      ExpressionAttributeNames: this.#names,
      ExpressionAttributeValues: { ...this.#values, ...extraValues },
    };
  }

  #name(field: string): string {
    this.#names[`#${field}`] = field;
    return `#${field}`;
  }

  #value(field: string, value: unknown): string {
    this.#values[`:${field}`] = value;
    return `:${field}`;
  }
}

/** A stored item as a record: key attributes dropped, the rest validated. */
function recordOf(item: Record<string, unknown>): GenerationRecord {
  const fields = { ...item };
  for (const key of KEY_ATTRIBUTES) delete fields[key];
  return generationRecordSchema.parse(fields);
}
