import { execFile } from 'node:child_process';
import { access, mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PortInUseError } from '../../local/listen.js';
import { startLocalApi } from '../../local/local-api.js';
import { closeServer, listenOnLoopback } from '../support/loopback.js';

/** `npm start` on a port another process already listens on. */
const ROOT = path.join(import.meta.dirname, '..', '..');
let dir: string;
let taken: Server;
let port: number;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'server-port-'));
  taken = createServer();
  port = Number(new URL(await listenOnLoopback(taken)).port);
});

afterAll(async () => {
  await closeServer(taken);
  await rm(dir, { recursive: true, force: true });
});

describe('the local API on a port in use', () => {
  it('fails with PortInUseError before starting s3rver or the emulator', async () => {
    const s3Directory = path.join(dir, 's3');

    const started = startLocalApi({ port, s3Directory });

    await expect(started).rejects.toBeInstanceOf(PortInUseError);
    await expect(access(s3Directory)).rejects.toThrow(/ENOENT/);
  });

  it('npm start exits 1 by itself, with one line naming the port and how to pick another', async () => {
    const { code, stderr } = await new Promise<{ code: number; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        [path.join(ROOT, 'node_modules', 'tsx', 'dist', 'cli.mjs'), 'local/server.ts'],
        { cwd: ROOT, env: { ...process.env, PORT: String(port) } },
        (error, _stdout, stderr) => resolve({ code: error ? Number(error.code) : 0, stderr }),
      );
    });

    expect(code).toBe(1);
    expect(stderr.split('\n').filter((line) => line.startsWith('error:'))).toEqual([
      `error: port ${port} on 127.0.0.1 is in use; stop what listens there, or pick another port: PORT=<port> npm start (PORT=0 picks a free one)`,
    ]);
  }, 300_000);
});
