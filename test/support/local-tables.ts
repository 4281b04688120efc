import { afterAll, beforeAll } from 'vitest';
import { ensureTable, type LocalDynamo, startLocalDynamo } from '../../local/dynamodb.js';
import { generationsTableDefinition } from '../../local/runner.js';
import { runSynthesis } from './run-synthesis.js';

/**
 * A local DynamoDB (dynalite) for the file that calls this, started before its tests and stopped
 * after, and `fresh()`: a new generations table, as the CDK stack declares it, for each test, so
 * no test sees what another left.
 */
export function useLocalTables(prefix: string) {
  const definition = generationsTableDefinition(runSynthesis().template);
  const state: { dynamo?: LocalDynamo; count: number } = { count: 0 };
  beforeAll(async () => {
    state.dynamo = await startLocalDynamo();
  });
  afterAll(async () => {
    await state.dynamo?.close();
  });
  return {
    definition,
    /** The running server's client (inside a test or hook). */
    client: () => {
      if (!state.dynamo) throw new Error('the local DynamoDB starts in beforeAll');
      return state.dynamo.client;
    },
    /** Creates a new table and returns its name. */
    async fresh(): Promise<string> {
      const table = `${prefix}-${++state.count}`;
      if (!state.dynamo) throw new Error('the local DynamoDB starts in beforeAll');
      await ensureTable(state.dynamo.client, table, definition);
      return table;
    },
  };
}
