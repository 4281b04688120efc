/**
 * A Node.js binary of the Lambda runtime's major version for this machine, from npm's
 * `node-linux-<arch>` packages (the official Linux builds, repackaged), so the deployable bundles
 * can be tried on the Node they run on (test/infra/deployed-bundles.test.ts) while the suite itself
 * runs on the machine's Node.
 *
 * Not a dependency: the package declares `bin: node`, so as one it would put Node 24 first on
 * the PATH of every npm script and run the whole suite on it. Instead:
 * - `npm ci` (its `postinstall`, `npm run cache:arm64`) puts the package's tarball in the npm
 *   cache: 52 MB, downloaded once per npm cache (1.5 s here) ({@link cacheLambdaNodes});
 * - the first test that needs it unpacks `bin/node` from that cache, offline, into
 *   `node_modules/.cache/sd35-lambda-node/` (127 MB, 2–7 s; kept until the next `npm ci`)
 *   ({@link lambdaNode}).
 * Where neither works (another platform, a cache without it), the caller runs the current Node
 * and says so.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';

const ROOT = path.join(import.meta.dirname, '..');

/**
 * The Node.js release tried per Lambda runtime major version (`nodejs24.x` → 24). Lambda moves
 * its own patch release; the major is what the bundles target (`target: 'node24'`).
 */
export const LAMBDA_NODE_RELEASES: Readonly<Record<number, string>> = { 24: '24.22.3' };

/** Where unpacked binaries are kept: wiped by `npm ci` with the rest of node_modules. */
export const LAMBDA_NODE_DIR = path.join(ROOT, 'node_modules', '.cache', 'sd35-lambda-node');

/** The npm package (name@version) of Node `major` for this machine, or why there is none. */
export function lambdaNodePackage(
  major: number,
  host: { platform: string; arch: string } = process,
): { spec: string } | { reason: string } {
  const version = LAMBDA_NODE_RELEASES[major];
  if (!version) return { reason: `no Node ${major} release is pinned in local/lambda-node.ts` };
  if (host.platform !== 'linux' || (host.arch !== 'x64' && host.arch !== 'arm64'))
    return { reason: `npm has no Node ${major} package for ${host.platform}-${host.arch}` };
  return { spec: `node-linux-${host.arch}@${version}` };
}

/** The Node a test runs bundles with. */
export interface LambdaNode {
  /** The executable. */
  readonly path: string;
  /** Its version, e.g. `v24.22.3`. */
  readonly version: string;
  /** Why it is not of the Lambda runtime's major version; undefined when it is. */
  readonly fallback?: string;
}

/**
 * Node `major` for this machine, unpacked from the npm cache without the network (the tarball
 * `postinstall` put there) on first use; the current Node, with the reason, when that fails.
 * Safe to call from several processes at once (unpacked aside, then renamed into place).
 */
export function lambdaNode(major: number): LambdaNode {
  const current = { path: process.execPath, version: process.version };
  if (process.versions.node.split('.')[0] === String(major)) return current;
  const found = lambdaNodePackage(major);
  if ('reason' in found) return { ...current, fallback: found.reason };
  const dir = path.join(LAMBDA_NODE_DIR, found.spec.replace('@', '-'));
  const binary = path.join(dir, 'bin', 'node');
  try {
    if (!existsSync(binary)) unpack(found.spec, dir);
    const version = execFileSync(binary, ['--version'], { encoding: 'utf8' }).trim();
    return { path: binary, version };
  } catch (error) {
    return {
      ...current,
      fallback: `${found.spec} is not in the npm cache (\`npm run cache:arm64\` puts it there): ${firstLine(error)}`,
    };
  }
}

function unpack(spec: string, dir: string): void {
  mkdirSync(LAMBDA_NODE_DIR, { recursive: true });
  const work = mkdtempSync(path.join(LAMBDA_NODE_DIR, '.unpack-'));
  try {
    execFileSync('npm', ['pack', spec, '--offline', '--loglevel=error', '--pack-destination', work], {
      cwd: work,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const tarball = readdirSync(work).find((name) => name.endsWith('.tgz'));
    if (!tarball) throw new Error(`npm pack ${spec} left no tarball`);
    execFileSync('tar', ['xzf', tarball, 'package/bin/node'], { cwd: work });
    try {
      renameSync(path.join(work, 'package'), dir);
    } catch (error) {
      // Another process unpacked it first: theirs is as good.
      if (!existsSync(path.join(dir, 'bin', 'node'))) throw error;
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/**
 * `npm cache add` of every pinned Node release for this machine (run by `postinstall`): needs the
 * registry the first time, then nothing. Never fails: a miss only means the test runs the current
 * Node and says so. Returns whether they are all in the cache.
 */
export function cacheLambdaNodes(): boolean {
  let cached = true;
  for (const major of Object.keys(LAMBDA_NODE_RELEASES).map(Number)) {
    const found = lambdaNodePackage(major);
    if ('reason' in found) continue;
    console.log(`npm cache add ${found.spec}: Node ${major}, the Lambdas' runtime, to try the bundles on`);
    const added = spawnSync('npm', ['cache', 'add', '--prefer-offline', found.spec], {
      cwd: ROOT,
      stdio: 'inherit',
    });
    if (added.status === 0) continue;
    cached = false;
    console.error(
      `Warning: ${found.spec} is not in the npm cache: test/infra/deployed-bundles.test.ts will run the bundles on Node ${process.versions.node}.`,
    );
  }
  return cached;
}

function firstLine(error: unknown): string {
  const stderr = String((error as { stderr?: unknown }).stderr ?? '').trim();
  return (stderr || (error as Error).message).split('\n')[0] ?? '';
}
