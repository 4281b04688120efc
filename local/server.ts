import { randomBytes } from 'node:crypto';
import path from 'node:path';
import * as z from 'zod';
import { createOidcRelyingParty } from '../functions/api/console/oidc.js';
import type { OidcConsoleSignIn } from '../functions/api/console/oidc-routes.js';
import type { RecoveryReport } from './engine.js';
import { PortInUseError } from './listen.js';
import { startEngineApi } from './local-api.js';
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
  const emulatorSpeed = Number(process.env.DASHSCOPE_EMULATOR_SPEED || 4);
  if (!(emulatorSpeed > 0)) {
    throw new Error(
      `DASHSCOPE_EMULATOR_SPEED must be a positive number, got ${JSON.stringify(process.env.DASHSCOPE_EMULATOR_SPEED)}`,
    );
  }
  const consoleOidc = consoleOidcOf(process.env);
  const api = await startEngineApi({
    port,
    apiToken,
    consoleOidc,
    localDir: LOCAL_DIR,
    eventsFile: path.join(LOCAL_DIR, 'events.jsonl'),
    dashscopeApiKey: process.env.DASHSCOPE_API_KEY || undefined,
    dashscopeBaseUrl: process.env.DASHSCOPE_BASE_URL || undefined,
    emulatorSpeed,
    onPromoted: (recovery) =>
      process.stdout.write(
        `  the local engine's owner stopped: this server runs the executions now (${recovery.resumed.length} resumed)\n`,
      ),
  });
  const { engine } = api;
  const { owner } = engine;
  const upstream = owner.dashscope.emulator
    ? `DashScope emulator at ${owner.dashscope.baseUrl}`
    : 'DashScope (DASHSCOPE_API_KEY is set)';
  process.stdout.write(`SD 3.5 API listening on ${api.url}  (try ${api.url}/openapi.json)\n`);
  process.stdout.write(`  console: ${api.url}/console/\n`);
  process.stdout.write(
    `  workflow: synthesized from the CDK stack, run locally; S3: ${engine.s3.endpoint} (bucket ${engine.s3.bucket}; a file put under requests/ starts); ${upstream}\n`,
  );
  process.stdout.write(
    engine.role === 'owner'
      ? `  engine: this process runs the executions of ${path.relative(process.cwd(), LOCAL_DIR) || '.'}/${describeRecovery(engine.recovery)}\n`
      : `  engine: ${owner.kind === 'server' ? 'npm start' : 'npm run generate'} (PID ${owner.pid}) runs the executions of this folder; this server hands its work to it\n`,
  );
  process.stdout.write(
    apiToken
      ? '  auth: every request but /healthz needs "Authorization: Bearer $API_TOKEN"; the console asks for it once\n'
      : '  auth: none (API_TOKEN is not set) — the server is open, and listens on 127.0.0.1 only\n',
  );
  if (consoleOidc) {
    process.stdout.write(
      `  console sign-in: OIDC at ${process.env.CONSOLE_OIDC_ISSUER} (register ${api.url}/console/auth/callback as a redirect URI)\n`,
    );
  }
  process.stdout.write(
    `  events: appended to ${path.relative(process.cwd(), engine.events.file ?? '')}; webhooks signed with ${path.relative(process.cwd(), path.join(LOCAL_DIR, 'webhook-secret'))}\n`,
  );
  stopOnSignalOrOrphaning(async () => {
    await api.close({
      onSuspended: (unfinished) => {
        if (unfinished === 0) return;
        process.stdout.write(
          `${unfinished} generation(s) will resume the next time \`npm start\` or \`npm run generate\` runs here.\n`,
        );
      },
    });
  });
}

function describeRecovery(recovery: RecoveryReport | undefined): string {
  if (!recovery) return '';
  const parts = [
    recovery.resumed.length > 0 ? `${recovery.resumed.length} resumed` : '',
    recovery.interrupted.length > 0 ? `${recovery.interrupted.length} ended interrupted` : '',
  ].filter(Boolean);
  return parts.length > 0 ? ` (left unfinished by an earlier run: ${parts.join(', ')})` : '';
}

/**
 * Stops the server on SIGINT or SIGTERM, and, run by npm, when its parent goes away (SIGTERM to
 * npm's PID ends npm, which does not pass it on): the first stops cleanly, a second signal exits at once.
 * A stop that takes longer than 5 s exits anyway (what runs is recorded where it stood).
 */
function stopOnSignalOrOrphaning(stop: () => Promise<void>): void {
  let stopping = false;
  const parent = process.ppid;
  const begin = (why: string) => {
    if (stopping) process.exit(130);
    stopping = true;
    process.stdout.write(`stopping (${why})…\n`);
    setTimeout(() => process.exit(130), 5000).unref();
    stop().then(
      () => process.exit(0),
      (error: unknown) => {
        process.stderr.write(`error: ${error instanceof Error ? error.message : String(error)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => begin('SIGINT'));
  process.on('SIGTERM', () => begin('SIGTERM'));
  process.on('SIGHUP', () => begin('SIGHUP'));
  // Only under npm (`npm start`): started by hand in the background, the server outlives its shell.
  if (process.env.npm_lifecycle_event === undefined) return;
  setInterval(() => {
    if (process.ppid !== parent && !stopping) begin(`its parent process ${parent} ended`);
  }, 500).unref();
}

const consoleOidcEnvSchema = z.object({
  CONSOLE_OIDC_ISSUER: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).optional(),
  CONSOLE_OIDC_CLIENT_ID: z.string().min(1).optional(),
  CONSOLE_OIDC_CLIENT_SECRET: z.string().min(1).optional(),
  CONSOLE_OIDC_SCOPES: z.string().optional(),
});

/**
 * The console's OIDC sign-in, as on AWS in `jwt` mode, when CONSOLE_OIDC_ISSUER is set: the
 * issuer (http only on loopback), CONSOLE_OIDC_CLIENT_ID, and for a confidential client
 * CONSOLE_OIDC_CLIENT_SECRET. The session key is new at every start: a restart signs browsers out.
 * @throws Error naming the variable that is missing or malformed
 */
function consoleOidcOf(env: NodeJS.ProcessEnv): OidcConsoleSignIn | undefined {
  const blankAsUnset = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== ''));
  const parsed = consoleOidcEnvSchema.safeParse(blankAsUnset);
  if (!parsed.success) {
    const problem = parsed.error.issues[0];
    throw new Error(`${problem?.path.join('.')} ${problem?.message}`);
  }
  const { CONSOLE_OIDC_ISSUER: issuer, CONSOLE_OIDC_CLIENT_ID: clientId } = parsed.data;
  if (!issuer) return undefined;
  if (!clientId) throw new Error('CONSOLE_OIDC_CLIENT_ID is required with CONSOLE_OIDC_ISSUER');
  const secret = parsed.data.CONSOLE_OIDC_CLIENT_SECRET;
  const sessionKey = randomBytes(32).toString('base64url');
  return {
    relyingParty: createOidcRelyingParty({
      issuer,
      clientId,
      scopes: parsed.data.CONSOLE_OIDC_SCOPES?.split(/\s+/).filter(Boolean),
      clientSecret: secret ? async () => secret : undefined,
    }),
    sessionKey: async () => sessionKey,
  };
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
