import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';

const READS = new Set(['GetItemCommand', 'BatchGetItemCommand', 'QueryCommand', 'ScanCommand']);

let installed = 0;

/**
 * Runs `call` and adds up the read units DynamoDB (here dynalite) reports for every read it sends
 * through `client`: each GetItem, BatchGetItem, Query and Scan asks for `ReturnConsumedCapacity:
 * 'TOTAL'`, and a read that reports none fails the measurement rather than count as free.
 */
export async function readUnitsOf<T>(
  client: DynamoDBClient,
  call: () => Promise<T>,
): Promise<{ result: T; units: number; reads: number }> {
  const name = `read-units-${++installed}`;
  const totals = { units: 0, reads: 0 };
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (!READS.has(context.commandName ?? '')) return next(args);
      (args.input as { ReturnConsumedCapacity?: string }).ReturnConsumedCapacity = 'TOTAL';
      const out = await next(args);
      const reported = (out.output as { ConsumedCapacity?: unknown }).ConsumedCapacity;
      const capacities = (Array.isArray(reported) ? reported : [reported]) as Array<
        { CapacityUnits?: number } | undefined
      >;
      if (capacities.some((capacity) => capacity?.CapacityUnits === undefined))
        throw new Error(`${context.commandName} reported no consumed capacity`);
      totals.reads += 1;
      totals.units += capacities.reduce((sum, capacity) => sum + (capacity?.CapacityUnits ?? 0), 0);
      return out;
    },
    { step: 'initialize', name },
  );
  try {
    const result = await call();
    return { result, ...totals };
  } finally {
    client.middlewareStack.remove(name);
  }
}
