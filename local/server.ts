import path from 'node:path';
import { PortInUseError } from './listen.js';
import { startLocalApi } from './local-api.js';
import { LOCAL_DIR } from './pipeline.js';

/**
 * `npm start`: the HTTP API on 127.0.0.1:$PORT (default 3000) over the local workflow, s3rver and
 * the DashScope emulator (or DashScope itself when DASHSCOPE_API_KEY is set).
 */
async function main(): Promise<void> {
  const port = Number(process.env.PORT ?? 3000);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new Error(`PORT must be a port number, got ${JSON.stringify(process.env.PORT)}`);
  }
  const apiToken = process.env.API_TOKEN || undefined;
  const api = await startLocalApi({
    port,
    apiToken,
    eventsFile: path.join(LOCAL_DIR, 'events.jsonl'),
    dashscopeApiKey: process.env.DASHSCOPE_API_KEY || undefined,
    dashscopeBaseUrl: process.env.DASHSCOPE_BASE_URL || undefined,
  });
  const upstream = api.emulator
    ? `DashScope emulator at ${api.emulator.url}`
    : 'DashScope (DASHSCOPE_API_KEY is set)';
  process.stdout.write(`SD 3.5 API listening on ${api.url}  (try ${api.url}/openapi.json)\n`);
  process.stdout.write(`  console: ${api.url}/console/\n`);
  process.stdout.write(
    `  workflow: synthesized from the CDK stack, run locally; S3: ${api.s3.endpoint}; ${upstream}\n`,
  );
  process.stdout.write(
    apiToken
      ? '  auth: every request but /healthz needs "Authorization: Bearer $API_TOKEN"; the console asks for it once\n'
      : '  auth: none (API_TOKEN is not set) — the server is open, and listens on 127.0.0.1 only\n',
  );
  process.stdout.write(
    `  events: appended to ${path.relative(process.cwd(), api.events.file ?? '')}; webhooks signed with .local/webhook-secret\n`,
  );
  const stop = async () => {
    await api.close();
    process.exit(0);
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((error: unknown) => {
  // No process.exit: everything started has been stopped, so the process ends by itself.
  process.stderr.write(
    error instanceof PortInUseError
      ? `error: ${error.message}; stop what listens there, or pick another port: PORT=<port> npm start (PORT=0 picks a free one)\n`
      : `error: ${error instanceof Error ? error.message : String(error)}\n`,
  );
  process.exitCode = 1;
});
