import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';

/**
 * Runs `call` (one operation of a store) with `hook` (other writes, as a racing process would
 * make them) in the middle of it: after the operation read the item of generation `id`, before it
 * writes it. An adapter whose operation is one atomic step (in memory) runs the hook before it.
 */
export type Racing = <T>(id: string, hook: () => Promise<void>, call: () => Promise<T>) => Promise<T>;

/** The in-memory stores' operations are atomic: the racing writes come first. */
export const racingInMemory: Racing = async (_id, hook, call) => {
  await hook();
  return call();
};

let installed = 0;

/**
 * For a DynamoDB adapter: the hook runs once, just before the first write (PutItem, UpdateItem,
 * DeleteItem) to the admission item of `id` that `call` sends through `client`.
 */
export function beforeNextWrite(client: DynamoDBClient): Racing {
  return async (id, hook, call) => {
    const state: { pending?: () => Promise<void> } = { pending: hook };
    const name = `racing-${++installed}`;
    const itemId = JSON.stringify(`admission#${id}`);
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const write = /^(Put|Update|Delete)ItemCommand$/.test(context.commandName ?? '');
        const run = state.pending;
        if (run && write && JSON.stringify(args.input).includes(itemId)) {
          state.pending = undefined;
          await run();
        }
        return next(args);
      },
      { step: 'initialize', name },
    );
    let result: Awaited<ReturnType<typeof call>>;
    try {
      result = await call();
    } finally {
      client.middlewareStack.remove(name);
    }
    if (state.pending) throw new Error(`The racing writes never ran: no write to admission#${id}`);
    return result;
  };
}
