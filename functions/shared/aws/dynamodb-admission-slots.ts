import { DeleteCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { ADMISSION_INDEX, ADMISSION_KEY, type AdmissionQueue, admissionItemId } from '../admission.js';
import { type AdmissionTable, countedOf, itemSchema, progressOf } from './dynamodb-admission-items.js';
import type { LaneCounterWrites } from './dynamodb-admission-lanes.js';
import { applied, conditionalUpdate, queryAll } from './dynamodb-documents.js';

/**
 * The slots: an entry granted (once, whoever races: one conditional update), its progress noted,
 * and a slot or entry released; each grant, and each release of a waiting entry, counts the entry
 * as having left its lane.
 */
export function admissionSlotsOn(
  table: AdmissionTable,
  lanes: Pick<LaneCounterWrites, 'leave'>,
): Pick<AdmissionQueue, 'slots' | 'grant' | 'note' | 'release'> {
  const { documents, call, tableName } = table;
  return {
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
      let after: Record<string, unknown> | undefined;
      const made = await applied(() =>
        call('write', async () => {
          const out = await documents.send(
            new UpdateCommand({
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
              ReturnValues: 'ALL_NEW',
            }),
          );
          after = out.Attributes;
        }),
      );
      if (!made) return false;
      const granted = itemSchema.safeParse(after);
      const counted = granted.success ? countedOf(granted.data) : undefined;
      if (counted) await lanes.leave(counted.lane, counted.solo, 1, counted.runMs);
      return true;
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
      let old: Record<string, unknown> | undefined;
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
          old = out.Attributes;
        }),
      );
      // A waiting entry left its lane (cancelled, timed out).
      const left = old === undefined ? undefined : itemSchema.safeParse(old);
      const counted = left?.success ? countedOf(left.data) : undefined;
      if (counted && old?.[ADMISSION_KEY.queueKey] !== undefined)
        await lanes.leave(counted.lane, counted.solo, 1, counted.runMs);
      return removed;
    },
  };
}
