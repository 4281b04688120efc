import { ConditionalCheckFailedException, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  DynamoDBDocumentClient,
  QueryCommand,
  type QueryCommandInput,
  UpdateCommand,
  type UpdateCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { IndexUnavailableError } from '../generation-index.js';

/** The document client both table adapters use: undefined values dropped, classes kept out. */
export function documentClientOf(client: DynamoDBClient): DynamoDBDocumentClient {
  return DynamoDBDocumentClient.from(client, {
    marshallOptions: { removeUndefinedValues: true, convertClassInstanceToMap: false },
  });
}

/**
 * Runs one call of a table adapter (`store` names it in errors): a failed condition passes through
 * for the adapter to judge; anything else becomes an {@link IndexUnavailableError}.
 */
export function guardedCalls(store: string) {
  return async <T>(what: string, send: () => Promise<T>): Promise<T> => {
    try {
      return await send();
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) throw error;
      throw new IndexUnavailableError(`${store} ${what} failed: ${(error as Error).message}`, {
        cause: error,
      });
    }
  };
}

/** One guarded call of a table adapter, as {@link guardedCalls} makes it. */
export type GuardedCall = ReturnType<typeof guardedCalls>;

/** One conditional write: true when applied, false when its condition did not hold. */
export async function applied(write: () => Promise<unknown>): Promise<boolean> {
  try {
    await write();
    return true;
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) return false;
    throw error;
  }
}

/**
 * One conditional update: true when it was applied, false when its `ConditionExpression` did not
 * hold. Any other failure throws as {@link guardedCalls} makes it.
 */
export async function conditionalUpdate(
  documents: DynamoDBDocumentClient,
  call: ReturnType<typeof guardedCalls>,
  input: UpdateCommandInput,
): Promise<boolean> {
  try {
    await call('write', () => documents.send(new UpdateCommand(input)));
    return true;
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) return false;
    throw error;
  }
}

/** Every page of a query: its items, or with `Select: 'COUNT'` its count. */
export async function queryAll(
  documents: DynamoDBDocumentClient,
  call: ReturnType<typeof guardedCalls>,
  input: QueryCommandInput,
): Promise<{ items: Record<string, unknown>[]; count: number }> {
  const items: Record<string, unknown>[] = [];
  let count = 0;
  let start: Record<string, unknown> | undefined;
  do {
    const page = await call('query', () =>
      documents.send(new QueryCommand({ ...input, ExclusiveStartKey: start })),
    );
    items.push(...(page.Items ?? []));
    count += page.Count ?? 0;
    start = page.LastEvaluatedKey;
  } while (start);
  return { items, count };
}
