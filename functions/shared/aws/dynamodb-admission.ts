import { ConditionalCheckFailedException, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, GetCommand, PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import * as z from 'zod';
import {
  ADMISSION_INDEX,
  ADMISSION_KEY,
  type AdmissionQueue,
  type AdmissionRecord,
  admissionItemId,
  DISPATCHER_LEASE_ID,
  DISPATCHER_STATE_ID,
  type DispatcherLease,
  INITIAL_DISPATCHER_STATE,
  laneSchema,
  recentTasksItemId,
} from '../admission.js';
import { IndexUnavailableError } from '../generation-index.js';
import { conditionalUpdate, documentClientOf, guardedCalls, queryAll } from './dynamodb-documents.js';

/** `byQueue`'s sort key: ms zero-padded to sort as text, then the id for ties. */
const queueKeyOf = (enqueuedAt: number, id: string) => `${String(enqueuedAt).padStart(15, '0')}#${id}`;

const itemSchema = z.object({
  generationId: z.string(),
  lane: laneSchema,
  enqueuedAt: z.number(),
  expectedRunSeconds: z.number(),
  token: z.string(),
  [ADMISSION_KEY.account]: z.string().optional(),
  grantedAt: z.number().optional(),
  submittedAt: z.number().optional(),
  startedAt: z.number().optional(),
  submitAttemptAt: z.number().optional(),
  submitSeed: z.number().optional(),
  taskId: z.string().optional(),
});

/** The slot's progress fields (`note`): an entry that waits again has none. */
const PROGRESS_FIELDS = ['submittedAt', 'startedAt', 'submitAttemptAt', 'submitSeed', 'taskId'] as const;

/** Reads, then one conditional write, a few times over when another write came in between. */
const ENQUEUE_ATTEMPTS = 5;

/** One conditional write: true when applied, false when its condition did not hold. */
async function applied(write: () => Promise<unknown>): Promise<boolean> {
  try {
    await write();
    return true;
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) return false;
    throw error;
  }
}

/** The slot fields of an item, those present. */
const progressOf = (item: z.infer<typeof itemSchema>) =>
  Object.fromEntries(
    PROGRESS_FIELDS.filter((field) => item[field] !== undefined).map((field) => [field, item[field]]),
  );

/**
 * The DynamoDB adapter of {@link AdmissionQueue}: one item per generation in the generations
 * table (id `admission#{generation id}`, which no generation id can take), found through two
 * sparse indexes: `byQueue` (lane, then enqueue time) while it waits, `bySlot` (account) while it
 * holds a slot. Granting is one conditional update, so an entry is granted once whoever races.
 */
export function createDynamoAdmissionQueue(client: DynamoDBClient, tableName: string): AdmissionQueue {
  const documents = documentClientOf(client);
  const call = guardedCalls('Admission queue');
  const readTasks = async (account: string): Promise<Record<string, number>> => {
    const out = await call('read', () =>
      documents.send(
        new GetCommand({
          TableName: tableName,
          Key: { id: recentTasksItemId(account) },
          ConsistentRead: true,
        }),
      ),
    );
    const parsed = z.record(z.string(), z.number()).safeParse(out.Item?.tasks);
    return parsed.success ? parsed.data : {};
  };
  const read = async (id: string) => {
    const out = await call('read', () =>
      documents.send(
        new GetCommand({ TableName: tableName, Key: { id: admissionItemId(id) }, ConsistentRead: true }),
      ),
    );
    return out.Item ? itemSchema.parse(out.Item) : undefined;
  };

  return {
    async enqueue(entry) {
      const key = { id: admissionItemId(entry.id) };
      for (let attempt = 0; attempt < ENQUEUE_ATTEMPTS; attempt++) {
        const existing = await read(entry.id);
        if (!existing) {
          // Created only if still absent: a racing enqueue, grant or note is never overwritten.
          const created = await applied(() =>
            call('write', () =>
              documents.send(
                new PutCommand({
                  TableName: tableName,
                  Item: {
                    ...key,
                    generationId: entry.id,
                    lane: entry.lane,
                    enqueuedAt: entry.enqueuedAt,
                    expectedRunSeconds: entry.expectedRunSeconds,
                    token: entry.token,
                    [ADMISSION_KEY.lane]: entry.lane,
                    [ADMISSION_KEY.queueKey]: queueKeyOf(entry.enqueuedAt, entry.id),
                  },
                  ConditionExpression: 'attribute_not_exists(#id)',
                  ExpressionAttributeNames: { '#id': 'id' },
                }),
              ),
            ),
          );
          if (created) return;
          continue;
        }
        // The same Admit again, or a stale one: its execution already attempted a submit.
        const submitted = existing.submitAttemptAt !== undefined || existing.submittedAt !== undefined;
        if (existing.token === entry.token || submitted) return;
        // Waits again at its first place with the new token; a slot not yet used is given back.
        // Conditional on the record as read: a grant or a note in between makes it read again.
        const requeued = await conditionalUpdate(documents, call, {
          TableName: tableName,
          Key: key,
          UpdateExpression: `SET #token = :token, #laneField = :lane, #expected = :expected, #lane = :lane, #queueKey = :queueKey REMOVE #account, #slotKey, #grantedAt, ${PROGRESS_FIELDS.map((field) => `#${field}`).join(', ')}`,
          ConditionExpression:
            '#token = :read AND #enqueuedAt = :enqueuedAt AND attribute_not_exists(#submitAttemptAt) AND attribute_not_exists(#submittedAt)',
          ExpressionAttributeNames: {
            '#token': 'token',
            '#laneField': 'lane',
            '#expected': 'expectedRunSeconds',
            '#lane': ADMISSION_KEY.lane,
            '#queueKey': ADMISSION_KEY.queueKey,
            '#account': ADMISSION_KEY.account,
            '#slotKey': ADMISSION_KEY.slotKey,
            '#grantedAt': 'grantedAt',
            '#enqueuedAt': 'enqueuedAt',
            ...Object.fromEntries(PROGRESS_FIELDS.map((field) => [`#${field}`, field])),
          },
          ExpressionAttributeValues: {
            ':token': entry.token,
            ':lane': entry.lane,
            ':expected': entry.expectedRunSeconds,
            ':queueKey': queueKeyOf(existing.enqueuedAt, entry.id),
            ':read': existing.token,
            ':enqueuedAt': existing.enqueuedAt,
          },
        });
        if (requeued) return;
      }
      throw new IndexUnavailableError(
        `Admission queue enqueue of ${entry.id} failed: the entry changed on each of ${ENQUEUE_ATTEMPTS} attempts`,
      );
    },

    async waiting(lane, limit) {
      const out = await call('query', () =>
        documents.send(
          new QueryCommand({
            TableName: tableName,
            IndexName: ADMISSION_INDEX.byQueue,
            KeyConditionExpression: '#lane = :lane',
            ExpressionAttributeNames: { '#lane': ADMISSION_KEY.lane },
            ExpressionAttributeValues: { ':lane': lane },
            ScanIndexForward: true,
            Limit: limit,
          }),
        ),
      );
      return (out.Items ?? []).map((item) => {
        const parsed = itemSchema.parse(item);
        return { ...entryOf(parsed), token: parsed.token };
      });
    },

    async count(lane, before) {
      const { count } = await queryAll(documents, call, {
        TableName: tableName,
        IndexName: ADMISSION_INDEX.byQueue,
        KeyConditionExpression: `#lane = :lane${before ? ' AND #queueKey < :before' : ''}`,
        ExpressionAttributeNames: {
          '#lane': ADMISSION_KEY.lane,
          ...(before ? { '#queueKey': ADMISSION_KEY.queueKey } : {}),
        },
        ExpressionAttributeValues: {
          ':lane': lane,
          ...(before ? { ':before': queueKeyOf(before.enqueuedAt, before.id) } : {}),
        },
        Select: 'COUNT',
      });
      return count;
    },

    async get(id) {
      const item = await read(id);
      if (!item) return undefined;
      const entry = { ...entryOf(item), token: item.token };
      const account = item[ADMISSION_KEY.account];
      if (account === undefined || item.grantedAt === undefined) return { kind: 'waiting', ...entry };
      return {
        kind: 'granted',
        ...entry,
        account,
        grantedAt: item.grantedAt,
        ...progressOf(item),
      } satisfies AdmissionRecord;
    },

    async slots(account) {
      const { items: found } = await queryAll(documents, call, {
        TableName: tableName,
        IndexName: ADMISSION_INDEX.bySlot,
        KeyConditionExpression: '#account = :account',
        ExpressionAttributeNames: { '#account': ADMISSION_KEY.account },
        ExpressionAttributeValues: { ':account': account },
      });
      const items = found.map((item) => itemSchema.parse(item));
      return items.map((item) => ({
        id: item.generationId,
        account,
        lane: item.lane,
        grantedAt: item.grantedAt ?? item.enqueuedAt,
        expectedRunSeconds: item.expectedRunSeconds,
        ...progressOf(item),
      }));
    },

    async grant(id, account, grantedAt, token) {
      return conditionalUpdate(documents, call, {
        TableName: tableName,
        Key: { id: admissionItemId(id) },
        UpdateExpression:
          'REMOVE #lane, #queueKey SET #account = :account, #slotKey = :slotKey, grantedAt = :grantedAt',
        ConditionExpression: `attribute_exists(#queueKey)${token === undefined ? '' : ' AND #token = :token'}`,
        ExpressionAttributeNames: {
          '#lane': ADMISSION_KEY.lane,
          '#queueKey': ADMISSION_KEY.queueKey,
          '#account': ADMISSION_KEY.account,
          '#slotKey': ADMISSION_KEY.slotKey,
          ...(token === undefined ? {} : { '#token': 'token' }),
        },
        ExpressionAttributeValues: {
          ':account': account,
          ':slotKey': id,
          ':grantedAt': grantedAt,
          ...(token === undefined ? {} : { ':token': token }),
        },
      });
    },

    async note(id, progress) {
      const fields = Object.entries(progress).filter(([, value]) => value !== undefined);
      if (fields.length === 0) return;
      // Only a held slot: a note never brings back a released one (a failed condition is no error).
      await conditionalUpdate(documents, call, {
        TableName: tableName,
        Key: { id: admissionItemId(id) },
        UpdateExpression: `SET ${fields.map(([field]) => `#${field} = if_not_exists(#${field}, :${field})`).join(', ')}`,
        ConditionExpression: 'attribute_exists(#account)',
        ExpressionAttributeNames: {
          '#account': ADMISSION_KEY.account,
          ...Object.fromEntries(fields.map(([field]) => [`#${field}`, field])),
        },
        ExpressionAttributeValues: Object.fromEntries(fields.map(([field, value]) => [`:${field}`, value])),
      });
    },

    async release(id, token) {
      let removed = false;
      await applied(() =>
        call('write', async () => {
          const out = await documents.send(
            new DeleteCommand({
              TableName: tableName,
              Key: { id: admissionItemId(id) },
              ReturnValues: 'ALL_OLD',
              ...(token === undefined
                ? {}
                : {
                    ConditionExpression: '#token = :token',
                    ExpressionAttributeNames: { '#token': 'token' },
                    ExpressionAttributeValues: { ':token': token },
                  }),
            }),
          );
          removed = out.Attributes !== undefined;
        }),
      );
      return removed;
    },

    async recordTask(account, taskId, at) {
      const key = { id: recentTasksItemId(account) };
      const names = { '#tasks': 'tasks', '#task': taskId };
      // One write on every submit: the account's map exists after its first task.
      const setTask = { TableName: tableName, Key: key, UpdateExpression: 'SET #tasks.#task = :at' };
      const values = { ExpressionAttributeNames: names, ExpressionAttributeValues: { ':at': at } };
      if (
        await conditionalUpdate(documents, call, {
          ...setTask,
          ...values,
          ConditionExpression: 'attribute_exists(#tasks)',
        })
      )
        return;
      // The account's first task: create the map with it (or join one a concurrent first made).
      await call('write', () =>
        documents.send(
          new UpdateCommand({
            TableName: tableName,
            Key: key,
            UpdateExpression: 'SET #tasks = if_not_exists(#tasks, :empty)',
            ExpressionAttributeNames: { '#tasks': 'tasks' },
            ExpressionAttributeValues: { ':empty': {} },
          }),
        ),
      );
      await call('write', () => documents.send(new UpdateCommand({ ...setTask, ...values })));
    },

    async recentTasks(account, since) {
      const tasks = await readTasks(account);
      return new Set(Object.entries(tasks).flatMap(([taskId, at]) => (at >= since ? [taskId] : [])));
    },

    async pruneTasks(account, before) {
      const old = Object.entries(await readTasks(account)).filter(([, at]) => at < before);
      // At most 100 names per expression, well within DynamoDB's limits.
      for (let i = 0; i < old.length; i += 100) {
        const batch = old.slice(i, i + 100);
        await call('write', () =>
          documents.send(
            new UpdateCommand({
              TableName: tableName,
              Key: { id: recentTasksItemId(account) },
              UpdateExpression: `REMOVE ${batch.map((_, k) => `#tasks.#t${k}`).join(', ')}`,
              ExpressionAttributeNames: {
                '#tasks': 'tasks',
                ...Object.fromEntries(batch.map(([taskId], k) => [`#t${k}`, taskId])),
              },
            }),
          ),
        );
      }
    },

    async readState() {
      const out = await call('read', () =>
        documents.send(
          new GetCommand({ TableName: tableName, Key: { id: DISPATCHER_STATE_ID }, ConsistentRead: true }),
        ),
      );
      const streak = z.int().nonnegative().safeParse(out.Item?.interactiveStreak);
      return streak.success ? { interactiveStreak: streak.data } : INITIAL_DISPATCHER_STATE;
    },

    async writeState(state) {
      await call('write', () =>
        documents.send(
          new PutCommand({
            TableName: tableName,
            Item: { id: DISPATCHER_STATE_ID, interactiveStreak: state.interactiveStreak },
          }),
        ),
      );
    },
  };
}

function entryOf(item: z.infer<typeof itemSchema>) {
  return {
    id: item.generationId,
    lane: item.lane,
    enqueuedAt: item.enqueuedAt,
    expectedRunSeconds: item.expectedRunSeconds,
  };
}

/**
 * The DynamoDB adapter of {@link DispatcherLease}: one item in the generations table, id
 * {@link DISPATCHER_LEASE_ID}, with its `owner`, `expiresAt` (ms) and, while a run is requested of
 * its holder, `again`. Every write is conditional, so two dispatchers never both hold it.
 */
export function createDynamoDispatcherLease(client: DynamoDBClient, tableName: string): DispatcherLease {
  const documents = documentClientOf(client);
  const call = guardedCalls('Dispatcher lease');
  const Key = { id: DISPATCHER_LEASE_ID };
  const update = (
    UpdateExpression: string,
    ConditionExpression: string,
    ExpressionAttributeNames: Record<string, string>,
    ExpressionAttributeValues: Record<string, unknown>,
  ) =>
    conditionalUpdate(documents, call, {
      TableName: tableName,
      Key,
      UpdateExpression,
      ConditionExpression,
      ExpressionAttributeNames,
      ExpressionAttributeValues,
    });

  return {
    // A Put: whatever the previous holder left (its request too) is replaced.
    take: (owner, now, until) =>
      applied(() =>
        call('write', () =>
          documents.send(
            new PutCommand({
              TableName: tableName,
              Item: { ...Key, owner, expiresAt: until },
              ConditionExpression: 'attribute_not_exists(#id) OR #expiresAt < :now',
              ExpressionAttributeNames: { '#id': 'id', '#expiresAt': 'expiresAt' },
              ExpressionAttributeValues: { ':now': now },
            }),
          ),
        ),
      ),

    renew: (owner, until) =>
      update(
        'SET #expiresAt = :until',
        '#owner = :owner',
        { '#expiresAt': 'expiresAt', '#owner': 'owner' },
        { ':until': until, ':owner': owner },
      ),

    request: (now) =>
      update(
        'SET #again = :again',
        'attribute_exists(#id) AND #expiresAt >= :now',
        { '#again': 'again', '#id': 'id', '#expiresAt': 'expiresAt' },
        { ':again': true, ':now': now },
      ),

    async finish(owner, until) {
      // Released only if no request came: the check and the release are one conditional write.
      const released = await applied(() =>
        call('write', () =>
          documents.send(
            new DeleteCommand({
              TableName: tableName,
              Key,
              ConditionExpression: '#owner = :owner AND attribute_not_exists(#again)',
              ExpressionAttributeNames: { '#owner': 'owner', '#again': 'again' },
              ExpressionAttributeValues: { ':owner': owner },
            }),
          ),
        ),
      );
      if (released) return 'released';
      const again = await update(
        'SET #expiresAt = :until REMOVE #again',
        '#owner = :owner',
        { '#expiresAt': 'expiresAt', '#again': 'again', '#owner': 'owner' },
        { ':until': until, ':owner': owner },
      );
      return again ? 'again' : 'lost';
    },

    async handOff(owner) {
      await update(
        'SET #expiresAt = :expired',
        '#owner = :owner',
        { '#expiresAt': 'expiresAt', '#owner': 'owner' },
        { ':expired': 0, ':owner': owner },
      );
    },
  };
}
