import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * The layering rules in biome.jsonc (ARCHITECTURE.md, "Layering") bite: each case lints one probe
 * file with the project's own biome.jsonc, in a scratch copy of the layout under the OS temp
 * directory, so nothing is ever written inside the repository.
 */
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const biome = path.join(root, 'node_modules/@biomejs/biome/bin/biome');
const run = promisify(execFile);

let scratch: string;
let config: string;

beforeAll(async () => {
  scratch = await mkdtemp(path.join(tmpdir(), 'sd35-layering-'));
  config = await readFile(path.join(root, 'biome.jsonc'), 'utf8');
});

afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

/** The noRestrictedImports findings for `source` placed at `file` (a path relative to the root). */
async function restrictedImports(file: string, source: string): Promise<string[]> {
  const dir = await mkdtemp(path.join(scratch, 'case-'));
  await writeFile(path.join(dir, 'biome.jsonc'), config);
  await mkdir(path.dirname(path.join(dir, file)), { recursive: true });
  await writeFile(path.join(dir, file), source);
  // Biome exits 1 when it reports an error; the report is on stdout either way.
  const stdout = await run(
    process.execPath,
    [biome, 'lint', '--vcs-enabled=false', '--reporter=json', file],
    {
      cwd: dir,
    },
  ).then(
    (out) => out.stdout,
    (error: { stdout?: string }) => error.stdout ?? '',
  );
  const report = JSON.parse(stdout) as { diagnostics: Array<{ category: string; message: string }> };
  return report.diagnostics
    .filter((d) => d.category === 'lint/style/noRestrictedImports')
    .map((d) => d.message);
}

describe('layering rules', () => {
  it.each([
    ['a domain module', 'functions/trigger/trigger.ts', "import { x } from '../notify/notify.js';"],
    ['a handler', 'functions/trigger/handler.ts', "import { x } from '../notify/notify.js';"],
    ['functions/shared', 'functions/shared/probe.ts', "import { x } from '../api/app.js';"],
    ['functions/shared/aws', 'functions/shared/aws/probe.ts', "import { x } from '../../poll/poll.js';"],
  ])('refuses a sibling function folder imported from %s', async (_, file, source) => {
    expect(await restrictedImports(file, `${source}\nexport const y = x;\n`)).toEqual([
      expect.stringContaining('A function folder imports only its own files and functions/shared'),
    ]);
  });

  it.each([
    ['a static import', "import { S3Client } from '@aws-sdk/client-s3';\nexport const y = S3Client;\n"],
    ['a dynamic import', "export const y = () => import('@aws-sdk/client-s3');\n"],
  ])('refuses the AWS SDK in domain code through %s', async (_, source) => {
    expect(await restrictedImports('functions/submit/submit.ts', source)).toEqual([
      expect.stringContaining('the SDK belongs in a handler.ts or functions/shared/aws/'),
    ]);
  });

  it.each([
    'functions/submit/handler.ts',
    'functions/notify/reconcile-handler.ts',
    'functions/shared/aws/probe.ts',
  ])('lets %s use the AWS SDK', async (file) => {
    const source = "import { S3Client } from '@aws-sdk/client-s3';\nexport const y = S3Client;\n";

    expect(await restrictedImports(file, source)).toEqual([]);
  });

  it('lets a function import its own folder and functions/shared', async () => {
    const source =
      "import { a } from './notify.js';\nimport { b } from '../shared/events.js';\nexport const y = [a, b];\n";

    expect(await restrictedImports('functions/notify/probe.ts', source)).toEqual([]);
  });

  it('refuses a function folder imported from infra', async () => {
    const source = "import { x } from '../../functions/trigger/request-file.js';\nexport const y = x;\n";

    expect(await restrictedImports('infra/constructs/probe.ts', source)).toEqual([
      expect.stringContaining('The infrastructure imports only constants from functions/shared/**'),
    ]);
  });

  it('lets infra import functions/shared', async () => {
    const source = "import { x } from '../../functions/shared/events.js';\nexport const y = x;\n";

    expect(await restrictedImports('infra/constructs/probe.ts', source)).toEqual([]);
  });

  it('names every domain file allowed the AWS SDK in ARCHITECTURE.md', async () => {
    const standard = [
      'functions/*/handler.ts',
      'functions/notify/reconcile-handler.ts',
      'functions/shared/aws/**',
    ];
    // biome.jsonc: its comments are whole lines.
    const json = config.replace(/^\s*\/\/.*$/gm, '');
    const overrides = (JSON.parse(json) as { overrides: Array<{ includes: string[] }> }).overrides;
    const exceptions = overrides
      .flatMap((o) => o.includes)
      .filter((glob) => glob.startsWith('!functions/'))
      .map((glob) => glob.slice(1))
      .filter((file) => !standard.includes(file));
    const architecture = await readFile(path.join(root, 'ARCHITECTURE.md'), 'utf8');

    expect(exceptions.length).toBeGreaterThan(0);
    expect(exceptions.filter((file) => !architecture.includes(`\`${file}\``))).toEqual([]);
  });
});
