import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * The layering rules in biome.jsonc (ARCHITECTURE.md, "Layering") bite: each case places a probe
 * file in a scratch copy of the layout under the OS temp directory (nothing is ever written inside
 * the repository), and one Biome run with the project's own biome.jsonc lints them all.
 */
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const biome = path.join(root, 'node_modules/@biomejs/biome/bin/biome');
const run = promisify(execFile);

const SIBLING = 'A function folder imports only its own files and functions/shared';
const SDK = 'the SDK belongs in a handler.ts or functions/shared/aws/';
const INFRA = "The infrastructure imports only functions/shared/** and each function's spec.ts";

let scratch: string;
let config: string;

/** Every case's probe file (by path relative to the root) and its source: linted together, once. */
const probes = new Map<string, string>();
let findings: Record<string, string[]>;

/**
 * Adds a probe and returns its path: `…/probe.ts` becomes a path of its own (a domain module's
 * name is not what a rule looks at); any other name is the case's, and must be used once.
 */
function probe(file: string, source: string): string {
  const unique = file.endsWith('/probe.ts')
    ? file.replace(/probe\.ts$/, `probe-${probes.size + 1}.ts`)
    : file;
  if (probes.has(unique)) throw new Error(`Two cases lint ${unique}: give one another path`);
  probes.set(unique, source);
  return unique;
}

beforeAll(async () => {
  scratch = await mkdtemp(path.join(tmpdir(), 'sd35-layering-'));
  config = await readFile(path.join(root, 'biome.jsonc'), 'utf8');
  findings = await restrictedImportsOf(Object.fromEntries(probes));
});

afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

/** The noRestrictedImports findings for each probe (source by path relative to the root), in one lint. */
async function restrictedImportsOf(files: Record<string, string>): Promise<Record<string, string[]>> {
  const dir = await mkdtemp(path.join(scratch, 'case-'));
  await writeFile(path.join(dir, 'biome.jsonc'), config);
  for (const [file, source] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dir, file)), { recursive: true });
    await writeFile(path.join(dir, file), source);
  }
  // Biome exits 1 when it reports an error; the report is on stdout either way.
  const stdout = await run(
    process.execPath,
    [
      biome,
      'lint',
      '--vcs-enabled=false',
      '--reporter=json',
      '--max-diagnostics=none',
      ...Object.keys(files),
    ],
    { cwd: dir, maxBuffer: 64 * 1024 * 1024 },
  ).then(
    (out) => out.stdout,
    (error: { stdout?: string }) => error.stdout ?? '',
  );
  const report = JSON.parse(stdout) as {
    diagnostics: Array<{ category: string; message: string; location: { path?: string } }>;
  };
  const found = Object.fromEntries(Object.keys(files).map((file) => [file, [] as string[]]));
  for (const diagnostic of report.diagnostics) {
    if (diagnostic.category !== 'lint/style/noRestrictedImports') continue;
    found[diagnostic.location.path ?? '']?.push(diagnostic.message);
  }
  return found;
}

/** The findings for a probe added with {@link probe}. */
const restrictedImports = (file: string): string[] => findings[file] ?? [];

const importing = (from: string) => `import { x } from '${from}';\nexport const y = x;\n`;
const sdk = "import { S3Client } from '@aws-sdk/client-s3';\nexport const y = S3Client;\n";

/** The function folders of the repository, as `functions/*\/` lists them today. */
const functionFolders = readdirSync(path.join(root, 'functions'), { withFileTypes: true })
  .filter((entry) => entry.isDirectory() && entry.name !== 'shared')
  .map((entry) => entry.name);

describe('layering rules: function folders', () => {
  it.each(
    [
      ['a domain module', 'functions/trigger/probe.ts', '../notify/notify.js'],
      ['a handler', 'functions/trigger/handler.ts', '../notify/notify.js'],
      ['admit', 'functions/admit/probe.ts', '../dispatch/dispatch.js'],
      ['dispatch', 'functions/dispatch/handler.ts', '../admit/admit.js'],
      ['a function folder made today', 'functions/brand-new/probe.ts', '../poll/poll.js'],
      ['a folder inside a function', 'functions/api/console/probe.ts', '../../notify/notify.js'],
      ['functions/shared', 'functions/shared/probe.ts', '../api/app.js'],
      ['functions/shared/aws', 'functions/shared/aws/probe.ts', '../../poll/poll.js'],
    ].map(([name, file, from]) => [name, probe(file ?? '', importing(from ?? ''))]),
  )('refuses a sibling function folder imported from %s', (_, file) => {
    expect(restrictedImports(file)).toEqual([expect.stringContaining(SIBLING)]);
  });

  const intoNew = probe('functions/trigger/probe.ts', importing('../brand-new/x.js'));
  it('refuses a function folder made today, imported from another', () => {
    expect(restrictedImports(intoNew)).toEqual([expect.stringContaining(SIBLING)]);
  });

  const everyFolder = functionFolders.flatMap((folder, i) => [
    probe(
      `functions/${folder}/probe.ts`,
      importing(`../${functionFolders[(i + 1) % functionFolders.length]}/x.js`),
    ),
    probe('functions/shared/probe.ts', importing(`../${folder}/x.js`)),
  ]);
  it('covers every folder under functions/: each one importing, and imported by, another is refused', () => {
    expect(functionFolders).toEqual(
      expect.arrayContaining(['admit', 'api', 'dispatch', 'notify', 'persist', 'poll', 'submit', 'trigger']),
    );
    for (const file of everyFolder) {
      expect({ file, findings: restrictedImports(file) }).toEqual({
        file,
        findings: [expect.stringContaining(SIBLING)],
      });
    }
  });

  const outside = probe('functions/trigger/probe.ts', importing('../../local/runner.js'));
  it('refuses what lies outside functions/, the local engine included', () => {
    expect(restrictedImports(outside)).toEqual([expect.stringContaining(SIBLING)]);
  });

  it.each(
    (
      [
        [
          'its own folder and functions/shared',
          'functions/notify/probe.ts',
          ['./notify.js', '../shared/events.js'],
        ],
        [
          'from a folder inside a function, that function and functions/shared',
          'functions/api/console/probe.ts',
          ['./page.js', '../schemas.js', '../../shared/errors.js'],
        ],
        [
          'from functions/shared/aws, the rest of functions/shared',
          'functions/shared/aws/probe.ts',
          ['../events.js', '../dashscope/client.js'],
        ],
      ] as const
    ).map(([name, file, froms]) => {
      const source = froms.map((from, i) => `import { x as x${i} } from '${from}';\n`).join('');
      const used = `export const y = [${froms.map((_, i) => `x${i}`).join(', ')}];\n`;
      return [name, probe(file, source + used)];
    }),
  )('lets a function import %s', (_, file) => {
    expect(restrictedImports(file)).toEqual([]);
  });
});

describe('layering rules: the AWS SDK', () => {
  it.each(
    [
      ['a static import', 'functions/submit/probe.ts', sdk],
      [
        'a dynamic import',
        'functions/submit/probe.ts',
        "export const y = () => import('@aws-sdk/client-s3');\n",
      ],
      ['a folder inside a function', 'functions/api/console/probe.ts', sdk],
      ['functions/shared outside aws/', 'functions/shared/dashscope/probe.ts', sdk],
    ].map(([name, file, source]) => [name, probe(file ?? '', source ?? '')]),
  )('refuses the AWS SDK in domain code through %s', (_, file) => {
    expect(restrictedImports(file)).toEqual([expect.stringContaining(SDK)]);
  });

  it.each(
    [
      'functions/submit/handler.ts',
      'functions/admit/handler.ts',
      'functions/notify/reconcile-handler.ts',
      'functions/persist/copy-image.ts',
      'functions/shared/aws/probe.ts',
    ].map((file) => [file.replace(/probe\.ts$/, '…'), probe(file, sdk)]),
  )('lets %s use the AWS SDK', (_, file) => {
    expect(restrictedImports(file)).toEqual([]);
  });

  it('names every domain file allowed the AWS SDK in ARCHITECTURE.md', async () => {
    const standard = [
      'functions/*/handler.ts',
      'functions/notify/reconcile-handler.ts',
      'functions/shared/aws/**',
    ];
    // biome.jsonc: its comments are whole lines.
    const json = config.replace(/^\s*\/\/.*$/gm, '');
    type Override = {
      includes: string[];
      linter?: { rules?: { style?: { noRestrictedImports?: unknown } } };
    };
    const overrides = (JSON.parse(json) as { overrides: Override[] }).overrides;
    // The overrides of functions/ whose restricted imports leave the SDK out.
    const allowed = overrides
      .filter((o) => o.includes.every((glob) => glob.startsWith('functions/')))
      .filter((o) => {
        const rule = JSON.stringify(o.linter?.rules?.style?.noRestrictedImports ?? {});
        return rule.includes('"group"') && !rule.includes('@aws-sdk');
      })
      .flatMap((o) => o.includes);
    const exceptions = allowed.filter((file) => !standard.includes(file));
    const architecture = await readFile(path.join(root, 'ARCHITECTURE.md'), 'utf8');

    expect(allowed).toEqual(expect.arrayContaining(standard));
    expect(exceptions.length).toBeGreaterThan(0);
    expect(exceptions.filter((file) => !architecture.includes(`\`${file}\``))).toEqual([]);
  });
});

describe('layering rules: infra', () => {
  it.each(
    [
      ['a domain module', '../../functions/trigger/request-file.js'],
      ['a handler', '../../functions/trigger/handler.js'],
      ['a handler of a function folder made today', '../../functions/brand-new/handler.js'],
      ['a spec.ts that is not a function’s own', '../../functions/api/console/spec.js'],
    ].map(([name, from]) => [name, probe('infra/constructs/probe.ts', importing(from ?? ''))]),
  )('refuses %s imported from infra', (_, file) => {
    expect(restrictedImports(file)).toEqual([expect.stringContaining(INFRA)]);
  });

  it.each(
    [
      ['functions/shared', 'infra/constructs/probe.ts', '../../functions/shared/events.js'],
      ['a function’s spec.ts', 'infra/constructs/probe.ts', '../../functions/trigger/spec.js'],
      [
        'the spec.ts of a function folder made today',
        'infra/constructs/probe.ts',
        '../../functions/brand-new/spec.js',
      ],
      ['a spec.ts from the top of infra/', 'infra/probe.ts', '../functions/dispatch/spec.js'],
    ].map(([name, file, from]) => [name, probe(file ?? '', importing(from ?? ''))]),
  )('lets infra import %s', (_, file) => {
    expect(restrictedImports(file)).toEqual([]);
  });
});
