import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  EM_AARCH64,
  FILL_CACHE_COMMAND,
  functionBundles,
  LAMBDA_PLATFORM,
  lockedPlatformPackages,
  sharpArm64Problems,
  sharpArm64Report,
} from '../../infra/bundle-check.js';

/** EM_X86_64. */
const EM_X86_64 = 62;
const RUNPATH =
  '$ORIGIN/../../sharp-libvips-linux-arm64/lib:$ORIGIN/../../node_modules/@img/sharp-libvips-linux-arm64/lib';
const LIBVIPS = 'libvips-cpp.so.8.18.7';

const scratch = mkdtempSync(path.join(tmpdir(), 'bundle-check-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** A 64-bit little-endian ELF header for `machine`, then the dynamic strings a linked library names. */
function fakeElf(machine: number, strings: readonly string[]): Buffer {
  const header = Buffer.alloc(64);
  header.writeUInt32BE(0x7f454c46, 0);
  header[4] = 2; // ELFCLASS64
  header[5] = 1; // little-endian
  header.writeUInt16LE(machine, 18);
  return Buffer.concat([header, Buffer.from(strings.map((s) => `${s}\0`).join(''), 'latin1')]);
}

function write(file: string, content: string | Buffer): void {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, content);
}

/**
 * A fake Persist asset folder laid out as the bundling's `npm ci` for linux-arm64 leaves it (sharp,
 * its platform package, libvips), with fake ELF files; `leaveOut` drops packages, `machine` sets
 * the ELF machine of both native files.
 */
function fakeBundle(options: { leaveOut?: readonly string[]; machine?: number } = {}): string {
  const dir = mkdtempSync(path.join(scratch, 'asset.'));
  const machine = options.machine ?? EM_AARCH64;
  const modules = path.join(dir, 'node_modules');
  write(path.join(dir, 'index.mjs'), 'export const handler = () => {};\n');
  write(
    path.join(modules, 'sharp', 'package.json'),
    JSON.stringify({
      name: 'sharp',
      version: '0.35.5',
      main: './dist/index.cjs',
      optionalDependencies: {
        '@img/sharp-linux-arm64': '0.35.5',
        '@img/sharp-libvips-linux-arm64': '1.3.4',
        '@img/sharp-linux-x64': '0.35.5',
      },
    }),
  );
  write(path.join(modules, 'sharp', 'dist', 'index.cjs'), 'module.exports = {};\n');
  const packages: Record<string, () => void> = {
    '@img/sharp-linux-arm64': () => {
      const platform = path.join(modules, '@img', 'sharp-linux-arm64');
      write(
        path.join(platform, 'package.json'),
        JSON.stringify({
          name: '@img/sharp-linux-arm64',
          version: '0.35.5',
          exports: { './sharp.node': './index.cjs', './package': './package.json' },
          os: ['linux'],
          cpu: ['arm64'],
          libc: ['glibc'],
        }),
      );
      write(
        path.join(platform, 'index.cjs'),
        "module.exports = require('./lib/sharp-linux-arm64-0.35.5.node');",
      );
      write(
        path.join(platform, 'lib', 'sharp-linux-arm64-0.35.5.node'),
        fakeElf(machine, [LIBVIPS, 'libc.so.6', 'GLIBC_2.17', RUNPATH]),
      );
    },
    '@img/sharp-libvips-linux-arm64': () => {
      const libvips = path.join(modules, '@img', 'sharp-libvips-linux-arm64');
      write(path.join(libvips, 'package.json'), JSON.stringify({ name: '@img/sharp-libvips-linux-arm64' }));
      write(path.join(libvips, 'lib', LIBVIPS), fakeElf(machine, ['libc.so.6', 'GLIBC_2.17']));
    },
  };
  for (const [name, add] of Object.entries(packages)) if (!options.leaveOut?.includes(name)) add();
  return dir;
}

describe('the bundle reader (infra/bundle-check.ts)', () => {
  it('finds nothing wrong in a complete linux-arm64 bundle', () => {
    const bundle = fakeBundle();

    expect(sharpArm64Problems(bundle)).toEqual([]);
    expect(sharpArm64Report(bundle, "Persist's bundle")).toBeUndefined();
  });

  it('names both packages, their versions and files when the bundling left them out', () => {
    const bundle = fakeBundle({ leaveOut: ['@img/sharp-linux-arm64', '@img/sharp-libvips-linux-arm64'] });

    expect(sharpArm64Problems(bundle)).toEqual([
      "node_modules/@img/sharp-linux-arm64@0.35.5 is missing (sharp's addon, lib/*.node)",
      'node_modules/@img/sharp-libvips-linux-arm64@1.3.4 is missing (libvips, lib/libvips-cpp.so.*)',
    ]);
  });

  it('says what is missing and the fix in its report', () => {
    const bundle = fakeBundle({ leaveOut: ['@img/sharp-libvips-linux-arm64'] });

    const report = sharpArm64Report(bundle, "Persist's bundle") ?? '';

    expect(report).toContain(`Persist's bundle (${bundle}) lacks sharp's linux-arm64 binaries`);
    expect(report).toContain('  - node_modules/@img/sharp-libvips-linux-arm64@1.3.4 is missing');
    expect(report).not.toContain('@img/sharp-linux-arm64@');
    expect(report).toContain(`Fix: with the registry reachable, run \`${FILL_CACHE_COMMAND}\``);
  });

  it('refuses a bundle without sharp', () => {
    const bundle = fakeBundle();
    rmSync(path.join(bundle, 'node_modules', 'sharp'), { recursive: true });

    expect(sharpArm64Problems(bundle)).toEqual(['node_modules/sharp is missing']);
  });

  it('refuses native files for another machine', () => {
    const bundle = fakeBundle({ machine: EM_X86_64 });

    expect(sharpArm64Problems(bundle)).toEqual([
      "sharp's addon, node_modules/@img/sharp-linux-arm64/lib/sharp-linux-arm64-0.35.5.node, is a 64-bit ELF file for machine 62, not AArch64 (183)",
      `libvips, node_modules/@img/sharp-libvips-linux-arm64/lib/${LIBVIPS}, is a 64-bit ELF file for machine 62, not AArch64 (183)`,
    ]);
  });

  it('refuses an addon that is no ELF file, naming it', () => {
    const bundle = fakeBundle();
    const addon = path.join(bundle, 'node_modules/@img/sharp-linux-arm64/lib/sharp-linux-arm64-0.35.5.node');
    writeFileSync(addon, `not a binary ${LIBVIPS}\0${RUNPATH}\0`);

    expect(sharpArm64Problems(bundle)).toEqual([
      `sharp does not resolve for linux-arm64: ${addon} is not an ELF file`,
    ]);
  });
});

describe('lockedPlatformPackages', () => {
  const lock = {
    packages: {
      '': { name: 'project', dependencies: { sharp: '^0.35.5' } },
      'node_modules/sharp': { version: '0.35.5' },
      'node_modules/@img/sharp-linux-arm64': {
        version: '0.35.5',
        integrity: 'sha512-arm',
        optional: true,
        os: ['linux'],
        cpu: ['arm64'],
        libc: ['glibc'],
      },
      'node_modules/@img/sharp-libvips-linux-arm64': {
        version: '1.3.4',
        integrity: 'sha512-vips',
        optional: true,
        os: ['linux'],
        cpu: ['arm64'],
        libc: ['glibc'],
      },
      'node_modules/@img/sharp-linuxmusl-arm64': {
        version: '0.35.5',
        optional: true,
        os: ['linux'],
        cpu: ['arm64'],
        libc: ['musl'],
      },
      'node_modules/@img/sharp-linux-x64': { version: '0.35.5', optional: true, os: ['linux'], cpu: ['x64'] },
      'node_modules/@img/sharp-win32-arm64': {
        version: '0.35.5',
        optional: true,
        os: ['win32'],
        cpu: ['arm64'],
      },
      'node_modules/@esbuild/linux-arm64': {
        version: '0.28.2',
        dev: true,
        optional: true,
        os: ['linux'],
        cpu: ['arm64'],
      },
      'node_modules/not-windows': { version: '1.0.0', os: ['!win32'] },
    },
  };

  it("lists the runtime dependencies' packages for linux-arm64 glibc, not dev ones nor other platforms'", () => {
    expect(lockedPlatformPackages(lock, LAMBDA_PLATFORM)).toEqual([
      { name: '@img/sharp-libvips-linux-arm64', version: '1.3.4', integrity: 'sha512-vips' },
      { name: '@img/sharp-linux-arm64', version: '0.35.5', integrity: 'sha512-arm' },
      { name: 'not-windows', version: '1.0.0' },
    ]);
  });
});

describe('functionBundles', () => {
  it('maps each bundled function of a template to its asset folder', () => {
    const outdir = mkdtempSync(path.join(scratch, 'cdk.out-'));
    writeFileSync(
      path.join(outdir, 'Stack.template.json'),
      JSON.stringify({
        Resources: {
          PersistFn: { Type: 'AWS::Lambda::Function', Properties: { Code: { S3Key: 'abc.zip' } } },
          Inline: { Type: 'AWS::Lambda::Function', Properties: { Code: { ZipFile: 'x' } } },
          Bucket: { Type: 'AWS::S3::Bucket' },
        },
      }),
    );

    expect(functionBundles(outdir, 'Stack')).toEqual(
      new Map([['PersistFn', path.join(outdir, 'asset.abc')]]),
    );
  });
});
