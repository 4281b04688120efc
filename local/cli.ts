import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import type { GenerationView } from '../functions/api/schemas.js';
import { REQUEST_FLAG_OPTIONS, REQUEST_FLAGS_HELP, requestFromFlags } from './request-flags.js';

const USAGE = `Usage: sd35 generate "<prompt>" [options]

Creates a generation through the HTTP API, shows its progress, and downloads the images.

Options:
  --api <url>            API base URL                      [default $SD35_API_URL or http://127.0.0.1:3000]
  --out <dir>            where to save the images           [default ./generations]
  --idempotency-key <k>  send as Idempotency-Key
${REQUEST_FLAGS_HELP}
  -h, --help             this text

The bearer token, if the server wants one, is read from $API_TOKEN.`;

/** `sd35 generate …`: a human's client of the HTTP API (local server or a deployed stack). */
async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === '-h' || command === '--help' || command === undefined) {
    process.stdout.write(`${USAGE}\n`);
    return command === undefined ? 2 : 0;
  }
  if (command !== 'generate') {
    process.stderr.write(`error: unknown command ${JSON.stringify(command)}\n\n${USAGE}\n`);
    return 2;
  }
  const args = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      ...REQUEST_FLAG_OPTIONS,
      api: { type: 'string' },
      out: { type: 'string' },
      'idempotency-key': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (args.values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const api = (args.values.api ?? process.env.SD35_API_URL ?? 'http://127.0.0.1:3000').replace(/\/+$/, '');
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (process.env.API_TOKEN) headers.authorization = `Bearer ${process.env.API_TOKEN}`;
  if (args.values['idempotency-key']) headers['idempotency-key'] = args.values['idempotency-key'];

  const created = await call(`${api}/v1/generations`, {
    method: 'POST',
    headers,
    body: JSON.stringify(requestFromFlags(args.values, args.positionals)),
  });
  const { id } = created as { id: string };
  process.stderr.write(`generation ${id} created at ${api}\n`);

  const started = Date.now();
  let view: GenerationView;
  let last = '';
  for (;;) {
    view = (await call(`${api}/v1/generations/${id}`, { headers })) as GenerationView;
    const line = `[${((Date.now() - started) / 1000).toFixed(1).padStart(6)}s] ${view.status} · ${view.progress.done}/${view.progress.total} images`;
    if (line !== last) process.stderr.write(process.stderr.isTTY ? `\r\x1b[2K${line}` : `${line}\n`);
    last = line;
    if (view.status !== 'queued' && view.status !== 'running') break;
    await sleep(1000);
  }
  if (process.stderr.isTTY) process.stderr.write('\n');

  if (view.status !== 'succeeded' || !view.images) {
    const reason = view.error ? `${view.error.type}: ${view.error.message}` : view.status;
    process.stderr.write(`error: generation ${id} ${view.status}: ${reason}\n`);
    return 1;
  }
  const dir = path.resolve(args.values.out ?? 'generations', id);
  await mkdir(dir, { recursive: true });
  for (const image of view.images) {
    const response = await fetch(image.url);
    if (!response.ok) throw new Error(`download of image ${image.index} answered HTTP ${response.status}`);
    const bytes = Buffer.from(await response.arrayBuffer());
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    if (sha256 !== image.sha256) throw new Error(`image ${image.index} arrived corrupted (sha256 differs)`);
    const file = path.join(dir, path.basename(image.key));
    await writeFile(file, bytes);
    process.stdout.write(`${file}  (${image.bytes} bytes, seed ${image.seed})\n`);
  }
  for (const failure of view.failedImages ?? []) {
    process.stderr.write(`image ${failure.index} not stored: ${failure.type}: ${failure.message}\n`);
  }
  return 0;
}

async function call(url: string, init: RequestInit): Promise<unknown> {
  let response: Response;
  try {
    response = await fetch(url, init);
  } catch (error) {
    throw new Error(`cannot reach ${url} (is the API running? \`npm start\`): ${(error as Error).message}`);
  }
  const body = (await response.json().catch(() => undefined)) as
    | { error?: { type: string; message: string } }
    | undefined;
  if (!response.ok) {
    throw new Error(
      `${response.status} ${body?.error ? `${body.error.type}: ${body.error.message}` : response.statusText}`,
    );
  }
  return body;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`error: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  },
);
