import { GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import * as z from 'zod';
import { type AdmissionQueue, recentTasksItemId } from '../admission.js';
import type { AdmissionTable } from './dynamodb-admission-items.js';
import { conditionalUpdate } from './dynamodb-documents.js';

/** At most 100 names per expression, well within DynamoDB's limits. */
const PRUNE_BATCH = 100;

/**
 * The tasks this deployment created on an account: one item per account (`recentTasksItemId`), a
 * map `tasks` of task id to the time it was recorded, kept past the slots' releases.
 */
export function recentTasksOn(
  table: AdmissionTable,
): Pick<AdmissionQueue, 'recordTask' | 'recentTasks' | 'pruneTasks'> {
  const { documents, call, tableName } = table;
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
  return {
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
      for (let i = 0; i < old.length; i += PRUNE_BATCH) {
        const batch = old.slice(i, i + PRUNE_BATCH);
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
  };
}
