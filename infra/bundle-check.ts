import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

/**
 * Reads a synthesized Lambda bundle (a `cdk.out/asset.*` folder) the way Node on Lambda would
 * resolve sharp from it, without running it: which files `import('sharp')` and sharp's loader
 * reach, and what machine their native code is for. Pure file reading (no aws-cdk-lib), so it runs
 * on any host and anywhere: inside every synth (the validation of `GenerationFunction`),
 * `npm run synth:check`, `npm run check:arm64` and `test/infra/synth.test.ts`.
 */

/** The platform the Lambdas run on (`Architecture.ARM_64`, Amazon Linux: glibc), in npm's terms. */
export const LAMBDA_PLATFORM = { os: 'linux', cpu: 'arm64', libc: 'glibc' } as const;

/**
 * The command that puts the lock file's linux-arm64 packages in the npm cache (`npm ci` runs it
 * too, as `postinstall`): what a synth that found them missing tells you to run.
 */
export const FILL_CACHE_COMMAND = 'npm run cache:arm64';

/** ELF e_machine of 64-bit ARM (EM_AARCH64). */
export const EM_AARCH64 = 183;

/** The header facts of one ELF file. */
export interface ElfFacts {
  readonly file: string;
  /** 64 for ELFCLASS64. */
  readonly bits: number;
  readonly machine: number;
  /** The glibc sonames and symbol versions its dynamic strings name (musl's would be libc.musl-*). */
  readonly needsGlibc: boolean;
}

/** Reads an ELF header. Throws an Error naming the file when it is not ELF. */
export function elfFacts(file: string): ElfFacts {
  const bytes = readFileSync(file);
  if (bytes.length < 20 || bytes.readUInt32BE(0) !== 0x7f454c46)
    throw new Error(`${file} is not an ELF file`);
  const bits = bytes[4] === 2 ? 64 : 32;
  const machine = bytes[5] === 1 ? bytes.readUInt16LE(18) : bytes.readUInt16BE(18);
  return { file, bits, machine, needsGlibc: bytes.includes('libc.so.6\0') && bytes.includes('GLIBC_2.') };
}

/** What a Lambda bundle resolves for sharp, and the native files behind it. */
export interface SharpInBundle {
  /** What `import('sharp')` from the bundle's entry resolves to (the CommonJS view of it). */
  readonly sharpEntry: string;
  /** What sharp's loader requires on linux-arm64 glibc: the addon. */
  readonly addon: ElfFacts;
  /** The libvips library the addon needs, found through the addon's own RUNPATH. */
  readonly libvips: ElfFacts;
  /** `libc` of the platform package's package.json. */
  readonly addonLibc: readonly string[];
}

/**
 * Resolves sharp from `bundleDir/index.mjs` as Node does, then sharp's native addon for
 * linux-arm64 glibc (the package sharp's loader requires on that platform), then libvips through
 * the addon's RUNPATH (`$ORIGIN/…`) and its NEEDED name. Throws an Error saying which step found
 * nothing. Resolution walks up past the bundle as Node's does: {@link sharpArm64Problems} checks
 * that what it found is inside.
 */
export function sharpInBundle(bundleDir: string): SharpInBundle {
  const fromBundle = createRequire(path.join(bundleDir, 'index.mjs'));
  const sharpEntry = fromBundle.resolve('sharp');
  const fromSharp = createRequire(sharpEntry);
  // sharp's loader (dist/sharp.*) requires `@img/sharp-${platform}/sharp.node`, which that
  // package's exports map to index.cjs, which requires the addon in lib/.
  const platformIndex = fromSharp.resolve('@img/sharp-linux-arm64/sharp.node');
  const platformDir = path.dirname(platformIndex);
  const addonName = /require\('\.\/lib\/([^']+\.node)'\)/.exec(readFileSync(platformIndex, 'utf8'))?.[1];
  if (!addonName) throw new Error(`${platformIndex} does not require an addon under lib/`);
  const addonFile = path.join(platformDir, 'lib', addonName);
  const addonBytes = readFileSync(addonFile).toString('latin1');
  const needed = /libvips-cpp\.so\.[\d.]+/.exec(addonBytes)?.[0];
  const runpath = /\$ORIGIN[^\0]*/.exec(addonBytes)?.[0];
  if (!needed || !runpath) throw new Error(`${addonFile} names no libvips or no $ORIGIN RUNPATH`);
  const libvipsFile = runpath
    .split(':')
    .map((entry) => path.join(path.dirname(addonFile), entry.replace('$ORIGIN', '.'), needed))
    .find((candidate) => {
      try {
        return readdirSync(path.dirname(candidate)).includes(needed);
      } catch {
        return false;
      }
    });
  if (!libvipsFile)
    throw new Error(`${needed} is on none of the RUNPATH entries of ${addonFile}: ${runpath}`);
  const platformPackage = JSON.parse(readFileSync(path.join(platformDir, 'package.json'), 'utf8')) as {
    libc?: string[];
  };
  return {
    sharpEntry,
    addon: elfFacts(addonFile),
    libvips: elfFacts(libvipsFile),
    addonLibc: platformPackage.libc ?? [],
  };
}

/** sharp's packages for linux-arm64 glibc, and what each holds (as a file pattern under the package). */
const SHARP_ARM64_PACKAGES = [
  { name: '@img/sharp-linux-arm64', holds: "sharp's addon, lib/*.node" },
  { name: '@img/sharp-libvips-linux-arm64', holds: 'libvips, lib/libvips-cpp.so.*' },
] as const;

/**
 * What keeps sharp from loading on the Lambda (linux-arm64, glibc) from `bundleDir`, one line per
 * missing or wrong file, paths relative to the bundle; empty when sharp's addon and libvips are
 * there, inside the bundle, and 64-bit AArch64 ELF files linked against glibc.
 */
export function sharpArm64Problems(bundleDir: string): string[] {
  const root = path.resolve(bundleDir);
  const shown = (file: string) =>
    file.startsWith(root + path.sep) ? path.relative(root, file) : `${file} (outside the bundle)`;
  const sharpPackageFile = path.join(root, 'node_modules', 'sharp', 'package.json');
  if (!existsSync(sharpPackageFile)) return ['node_modules/sharp is missing'];
  const sharpPackage = JSON.parse(readFileSync(sharpPackageFile, 'utf8')) as {
    optionalDependencies?: Record<string, string>;
  };
  const missing = SHARP_ARM64_PACKAGES.filter(
    ({ name }) => !existsSync(path.join(root, 'node_modules', name, 'package.json')),
  ).map(({ name, holds }) => {
    const version = sharpPackage.optionalDependencies?.[name];
    return `node_modules/${name}${version ? `@${version}` : ''} is missing (${holds})`;
  });
  if (missing.length > 0) return missing;

  let sharp: SharpInBundle;
  try {
    sharp = sharpInBundle(root);
  } catch (error) {
    return [`sharp does not resolve for linux-arm64: ${(error as Error).message}`];
  }
  const problems: string[] = [];
  if (!sharp.sharpEntry.startsWith(root + path.sep))
    problems.push(`sharp resolves to ${shown(sharp.sharpEntry)}`);
  for (const [what, native] of [
    ["sharp's addon", sharp.addon],
    ['libvips', sharp.libvips],
  ] as const) {
    if (!native.file.startsWith(root + path.sep)) problems.push(`${what} resolves to ${shown(native.file)}`);
    if (native.bits !== 64 || native.machine !== EM_AARCH64)
      problems.push(
        `${what}, ${shown(native.file)}, is a ${native.bits}-bit ELF file for machine ${native.machine}, not AArch64 (${EM_AARCH64})`,
      );
    if (!native.needsGlibc) problems.push(`${what}, ${shown(native.file)}, is not linked against glibc`);
  }
  if (!sharp.addonLibc.includes(LAMBDA_PLATFORM.libc))
    problems.push(
      `node_modules/@img/sharp-linux-arm64 is for libc ${JSON.stringify(sharp.addonLibc)}, not ${LAMBDA_PLATFORM.libc}`,
    );
  return problems;
}

/**
 * The failure message for a bundle that lacks sharp's linux-arm64 binaries (what, where, why, the
 * fix), or undefined when it has them. `what` names the bundle, e.g. "Persist's bundle".
 */
export function sharpArm64Report(bundleDir: string, what = 'The bundle'): string | undefined {
  const problems = sharpArm64Problems(bundleDir);
  if (problems.length === 0) return undefined;
  return [
    `${what} (${bundleDir}) lacks sharp's linux-arm64 binaries, so every thumbnail would fail on Lambda:`,
    ...problems.map((problem) => `  - ${problem}`),
    "The bundling's `npm ci` for linux-arm64 takes them from the npm cache, or the registry when it is",
    'reachable; offline, it leaves these optional packages out without an error.',
    `Fix: with the registry reachable, run \`${FILL_CACHE_COMMAND}\` (it puts the lock file's linux-arm64`,
    'packages in the npm cache; `npm ci` runs it too), then synthesize again. `npm run synth:check` proves',
    'that an offline synth after `npm ci` bundles them.',
  ].join('\n');
}

/** One package of the lock file. */
export interface LockedPackage {
  readonly name: string;
  readonly version: string;
  readonly integrity?: string;
}

interface LockEntry {
  readonly name?: string;
  readonly version?: string;
  readonly integrity?: string;
  readonly dev?: boolean;
  readonly link?: boolean;
  readonly os?: readonly string[];
  readonly cpu?: readonly string[];
  readonly libc?: readonly string[];
}

/** npm's rule for an `os`/`cpu`/`libc` list: no list, a match, or only negations none of which names `value`. */
function allows(list: readonly string[] | undefined, value: string): boolean {
  if (!list || list.length === 0 || (list.length === 1 && list[0] === 'any')) return true;
  if (list.includes(`!${value}`)) return false;
  return list.includes(value) || list.every((entry) => entry.startsWith('!'));
}

/**
 * The platform-specific packages of the lock file (those with an `os`, `cpu` or `libc` list) that
 * the runtime dependencies (not the dev ones) bring and `platform` installs: what a bundling for
 * the Lambda's platform needs that `npm ci` on another host neither installs nor downloads
 * (sharp's `@img/sharp-linux-arm64` and `@img/sharp-libvips-linux-arm64` here). Sorted by name.
 */
export function lockedPlatformPackages(
  lock: { readonly packages?: Record<string, LockEntry> },
  platform: { readonly os: string; readonly cpu: string; readonly libc: string } = LAMBDA_PLATFORM,
): LockedPackage[] {
  const found = new Map<string, LockedPackage>();
  for (const [key, entry] of Object.entries(lock.packages ?? {})) {
    if (key === '' || entry.dev || entry.link || !entry.version) continue;
    if (!entry.os && !entry.cpu && !entry.libc) continue;
    if (
      !allows(entry.os, platform.os) ||
      !allows(entry.cpu, platform.cpu) ||
      !allows(entry.libc, platform.libc)
    )
      continue;
    const name = entry.name ?? key.slice(key.lastIndexOf('node_modules/') + 'node_modules/'.length);
    found.set(`${name}@${entry.version}`, {
      name,
      version: entry.version,
      ...(entry.integrity ? { integrity: entry.integrity } : {}),
    });
  }
  return [...found.values()].sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * The bundle folder of each Lambda function of a synthesized stack, by logical id, as the cloud
 * assembly in `outdir` names them (`asset.<hash>`, from the function's `Code.S3Key`).
 */
export function functionBundles(outdir: string, stackId: string): Map<string, string> {
  const template = JSON.parse(readFileSync(path.join(outdir, `${stackId}.template.json`), 'utf8')) as {
    Resources: Record<string, { Type: string; Properties?: { Code?: { S3Key?: unknown } } }>;
  };
  const found = new Map<string, string>();
  for (const [id, resource] of Object.entries(template.Resources)) {
    const key = resource.Properties?.Code?.S3Key;
    if (resource.Type === 'AWS::Lambda::Function' && typeof key === 'string') {
      found.set(id, path.join(outdir, `asset.${key.replace(/\.zip$/, '')}`));
    }
  }
  return found;
}
