import { startEmulator } from './server.js';

/**
 * Runs an emulator until interrupted, for local runs:
 * `npx tsx local/dashscope-emulator/cli.ts`, configured through
 * DASHSCOPE_EMULATOR_PORT (default 0, any free port), DASHSCOPE_EMULATOR_SPEED (default 1),
 * DASHSCOPE_EMULATOR_API_KEY (default `sk-local-emulator`; deliberately not the real key's variable)
 * and DASHSCOPE_EMULATOR_STATE_FILE (default none: tasks are forgotten when it stops).
 */
async function main(): Promise<void> {
  const emulator = await startEmulator({
    port: Number(process.env.DASHSCOPE_EMULATOR_PORT ?? 0),
    speed: Number(process.env.DASHSCOPE_EMULATOR_SPEED ?? 1),
    apiKey: process.env.DASHSCOPE_EMULATOR_API_KEY || undefined,
    stateFile: process.env.DASHSCOPE_EMULATOR_STATE_FILE || undefined,
  });
  console.log(`DashScope emulator listening: DASHSCOPE_BASE_URL=${emulator.url}`);
  const stop = () => {
    emulator.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

await main();
