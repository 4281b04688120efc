/**
 * The servers `bench:memory` measures against, in a process of their own so that their CPU time
 * is not counted as the handlers': s3rver (in a temporary folder) and the DashScope emulator.
 * Prints one JSON line with their addresses, then runs until its stdin closes.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startEmulator } from '../local/dashscope-emulator/server.js';
import { startLocalS3 } from '../local/s3.js';

/** The emulator's speed-up: a default image runs in about 1.4 s. */
export const EMULATOR_SPEED = 4;

const directory = await mkdtemp(path.join(tmpdir(), 'sd35-bench-memory-'));
const s3 = await startLocalS3({ directory });
const emulator = await startEmulator({ speed: EMULATOR_SPEED });
process.stdout.write(
  `${JSON.stringify({ s3Endpoint: s3.endpoint, bucket: s3.bucket, dashscopeUrl: emulator.url, apiKey: emulator.apiKey })}\n`,
);
process.stdin.resume();
process.stdin.on('end', async () => {
  await emulator.close();
  await s3.close();
  await rm(directory, { recursive: true, force: true });
  process.exit(0);
});
