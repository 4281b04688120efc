import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import * as z from 'zod';
import {
  type AdmissionQueue,
  DISPATCHER_LEASE_ID,
  DISPATCHER_STATE_ID,
  type DispatcherLease,
  type DispatcherState,
  INITIAL_DISPATCHER_STATE,
} from '../admission.js';
import type { AdmissionTable } from './dynamodb-admission-items.js';
import { applied, conditionalUpdate, documentClientOf, guardedCalls } from './dynamodb-documents.js';

const roundSchema = z.object({
  clock: z.number().nonnegative(),
  width: z.int().nonnegative(),
  lines: z.int().nonnegative(),
});
/** Each lane's clock in the fair order ({@link DispatcherState.rounds}). */
const roundsSchema = z.object({ interactive: roundSchema.optional(), batch: roundSchema.optional() });
/** Each account's observed pace ({@link DispatcherState.pace}). */
const paceSchema = z.record(
  z.string(),
  z.object({
    freed: z.number().nonnegative(),
    overMs: z.number().nonnegative(),
    fullSince: z.number().optional(),
  }),
);

/** The dispatcher's state on its item; anything missing or malformed reads as the initial state. */
export function stateOf(item: Record<string, unknown> | undefined): DispatcherState {
  const streak = z.int().nonnegative().safeParse(item?.interactiveStreak);
  const runners = z.record(z.string(), z.number()).safeParse(item?.runnersFreeAt);
  const rounds = roundsSchema.safeParse(item?.rounds);
  const pace = paceSchema.safeParse(item?.pace);
  return {
    interactiveStreak: streak.success ? streak.data : INITIAL_DISPATCHER_STATE.interactiveStreak,
    ...(rounds.success && Object.keys(rounds.data).length > 0 ? { rounds: rounds.data } : {}),
    ...(runners.success ? { runnersFreeAt: runners.data } : {}),
    ...(pace.success && Object.keys(pace.data).length > 0 ? { pace: pace.data } : {}),
  };
}

/**
 * The dispatcher's state on the state item ({@link DISPATCHER_STATE_ID}), which the lanes'
 * counters share: written by an update of its own attributes, never a put.
 */
export function dispatcherStateOn(table: AdmissionTable): Pick<AdmissionQueue, 'readState' | 'writeState'> {
  const { documents, call, tableName } = table;
  return {
    async readState() {
      const out = await call('read', () =>
        documents.send(
          new GetCommand({ TableName: tableName, Key: { id: DISPATCHER_STATE_ID }, ConsistentRead: true }),
        ),
      );
      return stateOf(out.Item);
    },

    async writeState(state) {
      // An update, not a put: the lanes' counters on the same item stay as they are.
      const set = ['#streak = :streak'];
      const remove: string[] = [];
      for (const [name, value] of [
        ['#runners', state.runnersFreeAt],
        ['#rounds', state.rounds],
        ['#pace', state.pace],
      ] as const)
        (value === undefined ? remove : set).push(value === undefined ? name : `${name} = :${name.slice(1)}`);
      await call('write', () =>
        documents.send(
          new UpdateCommand({
            TableName: tableName,
            Key: { id: DISPATCHER_STATE_ID },
            UpdateExpression: `SET ${set.join(', ')}${remove.length > 0 ? ` REMOVE ${remove.join(', ')}` : ''}`,
            ExpressionAttributeNames: {
              '#streak': 'interactiveStreak',
              '#runners': 'runnersFreeAt',
              '#rounds': 'rounds',
              '#pace': 'pace',
            },
            ExpressionAttributeValues: {
              ':streak': state.interactiveStreak,
              ...(state.runnersFreeAt === undefined ? {} : { ':runners': state.runnersFreeAt }),
              ...(state.rounds === undefined ? {} : { ':rounds': state.rounds }),
              ...(state.pace === undefined ? {} : { ':pace': state.pace }),
            },
          }),
        ),
      );
    },
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
