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

/** The dispatcher's state on its item; anything missing or malformed reads as the initial state. */
export function stateOf(item: Record<string, unknown> | undefined): DispatcherState {
  const streak = z.int().nonnegative().safeParse(item?.interactiveStreak);
  const runners = z.record(z.string(), z.number()).safeParse(item?.runnersFreeAt);
  return {
    interactiveStreak: streak.success ? streak.data : INITIAL_DISPATCHER_STATE.interactiveStreak,
    ...(runners.success ? { runnersFreeAt: runners.data } : {}),
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
      await call('write', () =>
        documents.send(
          new UpdateCommand({
            TableName: tableName,
            Key: { id: DISPATCHER_STATE_ID },
            UpdateExpression:
              state.runnersFreeAt === undefined
                ? 'SET #streak = :streak REMOVE #runners'
                : 'SET #streak = :streak, #runners = :runners',
            ExpressionAttributeNames: { '#streak': 'interactiveStreak', '#runners': 'runnersFreeAt' },
            ExpressionAttributeValues: {
              ':streak': state.interactiveStreak,
              ...(state.runnersFreeAt === undefined ? {} : { ':runners': state.runnersFreeAt }),
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
