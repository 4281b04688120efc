import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

/**
 * Reads a synthesized Lambda bundle (a `cdk.out/asset.*` folder) the way Node on Lambda would
 * resolve sharp from it, without running it: which files `import('sharp')` and sharp's loader
 * reach, and what machine their native code is for. Pure file reading, so it runs on any host
 * (`test/infra/synth.test.ts`, `npm run check:arm64`).
 */

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
  if (bytes.readUInt32BE(0) !== 0x7f454c46) throw new Error(`${file} is not an ELF file`);
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
 * nothing.
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
