import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { functionBundles } from '../../infra/bundle-check.js';
import { type Deployment, physicalName, resolveTemplateValue } from '../../local/template-env.js';

export { type Deployment, physicalName, resolveTemplateValue };

/**
 * Runs a deployable Lambda bundle (a `cdk.out/asset.*` folder) the way the Lambda Node.js runtime
 * does: a fresh Node process in the bundle's folder, the handler module found and imported as the
 * runtime finds it (`index.handler` → `index.js`, `index.mjs` or `index.cjs`), the function's
 * synthesized environment and nothing of this process's, the runtime's own variables, then one
 * `handler(event, context)` per event, in order, in that one process (one container, warm after
 * the first). test/infra/deployed-bundles.test.ts runs every bundle of a real `cdk synth` with it.
 */

const PROJECT_ROOT = path.join(import.meta.dirname, '..', '..');

/** One Lambda function of a synthesized template, with its bundle. */
export interface DeployedFunction {
  readonly logicalId: string;
  /** The bundle folder, `cdk.out/asset.<hash>`. */
  readonly bundleDir: string;
  /** `Handler`, e.g. `index.handler`. */
  readonly handler: string;
  /** `Runtime`, e.g. `nodejs24.x`. */
  readonly runtime: string;
  readonly memorySize: number;
  readonly timeoutSeconds: number;
  /** `Environment.Variables` as synthesized: strings and CloudFormation intrinsics. */
  readonly variables: Readonly<Record<string, unknown>>;
}

/** A synthesized template, as far as this module reads it. */
export interface Template {
  readonly Resources: Record<string, { Type: string; Properties?: Record<string, unknown> }>;
}

/** Every bundled Lambda function of the stack `stackId` synthesized into `outdir`. */
export function deployedFunctions(outdir: string, stackId: string): DeployedFunction[] {
  const template = readTemplate(outdir, stackId);
  return [...functionBundles(outdir, stackId)].map(([logicalId, bundleDir]) => {
    const properties = template.Resources[logicalId]?.Properties ?? {};
    return {
      logicalId,
      bundleDir,
      handler: String(properties.Handler),
      runtime: String(properties.Runtime),
      memorySize: Number(properties.MemorySize ?? 128),
      timeoutSeconds: Number(properties.Timeout ?? 3),
      variables:
        (properties.Environment as { Variables?: Record<string, unknown> } | undefined)?.Variables ?? {},
    };
  });
}

export function readTemplate(outdir: string, stackId: string): Template {
  return JSON.parse(readFileSync(path.join(outdir, `${stackId}.template.json`), 'utf8')) as Template;
}

/** The major Node version of a Lambda runtime identifier: `nodejs24.x` → 24. */
export function runtimeMajor(runtime: string): number {
  const major = /^nodejs(\d+)\.x$/.exec(runtime)?.[1];
  if (!major) throw new Error(`${runtime} is not a Lambda Node.js runtime`);
  return Number(major);
}

/** How a bundle run reaches the local services, and what it is given instead of AWS's. */
export interface LocalAws {
  /** Every service without its own endpoint below (`AWS_ENDPOINT_URL`): the recording endpoint. */
  readonly endpoint: string;
  /** Service endpoints by the SDK's `AWS_ENDPOINT_URL_<SERVICE>` suffix, e.g. `{ S3: …, DYNAMODB: … }`. */
  readonly services: Readonly<Record<string, string>>;
  /** The static credentials the local services accept. */
  readonly credentials: { readonly accessKeyId: string; readonly secretAccessKey: string };
  /** The function's `HOME` and where a shared AWS config would be (none is). */
  readonly home: string;
}

/**
 * The process environment of `fn` as Lambda would set it, its services pointed at `local`:
 * the template's variables, resolved for `deployment`; the runtime's own (`AWS_REGION`,
 * `AWS_LAMBDA_FUNCTION_NAME`, `_HANDLER`, `TZ`…); static credentials; the SDK's endpoint variables
 * (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_S3`…); and `overrides` last (a variable set to undefined
 * is removed). Nothing of this process's environment but `PATH`.
 */
export function lambdaEnvironment(
  fn: DeployedFunction,
  deployment: Deployment,
  local: LocalAws,
  overrides: Readonly<Record<string, string | undefined>> = {},
): Record<string, string> {
  const name = physicalName(deployment, fn.logicalId);
  const variables = resolveTemplateValue(fn.variables, deployment) as Record<string, unknown>;
  const environment: Record<string, string | undefined> = {
    PATH: process.env.PATH,
    LANG: 'en_US.UTF-8',
    TZ: ':UTC',
    HOME: local.home,
    AWS_CONFIG_FILE: path.join(local.home, 'no-aws-config'),
    AWS_SHARED_CREDENTIALS_FILE: path.join(local.home, 'no-aws-credentials'),
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_REGION: deployment.region,
    AWS_DEFAULT_REGION: deployment.region,
    AWS_EXECUTION_ENV: `AWS_Lambda_${fn.runtime}`,
    AWS_LAMBDA_FUNCTION_NAME: name,
    AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(fn.memorySize),
    AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
    AWS_LAMBDA_LOG_GROUP_NAME: `/aws/lambda/${name}`,
    AWS_LAMBDA_LOG_STREAM_NAME: '2026/01/01/[$LATEST]0123456789abcdef0123456789abcdef',
    LAMBDA_TASK_ROOT: fn.bundleDir,
    _HANDLER: fn.handler,
    AWS_ACCESS_KEY_ID: local.credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: local.credentials.secretAccessKey,
    AWS_ENDPOINT_URL: local.endpoint,
    ...Object.fromEntries(
      Object.entries(local.services).map(([service, url]) => [`AWS_ENDPOINT_URL_${service}`, url]),
    ),
    ...Object.fromEntries(Object.entries(variables).map(([key, value]) => [key, String(value)])),
    ...overrides,
  };
  return Object.fromEntries(
    Object.entries(environment).filter((entry): entry is [string, string] => entry[1] !== undefined),
  );
}

/** What one invocation returned: the handler's value, or the error as Lambda reports it. */
export type Invocation =
  | { readonly ok: true; readonly value: unknown }
  | {
      readonly ok: false;
      readonly errorType: string;
      readonly errorMessage: string;
      readonly trace?: string;
    };

/** A run of a bundle: one process, its invocations. */
export interface BundleRun {
  /** `process.version` of the process that ran it. */
  readonly nodeVersion: string;
  /** One per event, in order. */
  readonly invocations: Invocation[];
  /** The process's stdout and stderr (the function's logs), interleaved as they came. */
  readonly logs: string;
  /** Wall time from the events sent to the process's end, in ms (its import may have come before). */
  readonly ms: number;
  /** CPU time (user and system) of the process, in ms. */
  readonly cpuMs: number;
}

/** Whoever provides the packages the bundles leave out (`externalModules`): the runtime's SDK. */
const RUNTIME_SDK_PARENT = pathToFileURL(path.join(PROJECT_ROOT, 'package.json')).href;

/**
 * The child: Lambda's runtime in miniature. The runtime provides the AWS SDK v3; a bundle that
 * leaves an `@aws-sdk/*` package out (the Secrets Manager client) gets it from there, and here
 * from this project's node_modules, through a resolve hook that only answers what the bundle
 * cannot resolve itself. Results go to fd 3, so the function's logs on stdout stay apart.
 */
const CHILD = `
import { existsSync, writeSync } from 'node:fs';
import * as nodeModule from 'node:module';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const [root, handlerSpec, RUNTIME_SDK, functionArn, timeoutSeconds] = process.argv.slice(1);
function resolve(specifier, context, nextResolve) {
  const fromRuntime = (error) => {
    if (error?.code !== 'ERR_MODULE_NOT_FOUND' || !specifier.startsWith('@aws-sdk/')) throw error;
    return nextResolve(specifier, { ...context, parentURL: RUNTIME_SDK });
  };
  try {
    const resolved = nextResolve(specifier, context);
    return typeof resolved?.then === 'function' ? resolved.catch(fromRuntime) : resolved;
  } catch (error) {
    return fromRuntime(error);
  }
}
if (nodeModule.registerHooks) nodeModule.registerHooks({ resolve });
else nodeModule.register('data:text/javascript,' + encodeURIComponent('const RUNTIME_SDK = ' + JSON.stringify(RUNTIME_SDK) + ';\\nexport ' + resolve));

const report = (invocations) => {
  const cpu = process.cpuUsage();
  writeSync(3, JSON.stringify({ nodeVersion: process.version, cpuMs: (cpu.user + cpu.system) / 1000, invocations }));
  process.exit(0);
};
const failure = (error, errorType) => ({
  ok: false,
  errorType: errorType ?? error?.name ?? 'Error',
  errorMessage: String(error?.message ?? error),
  trace: error?.stack,
});
const dot = handlerSpec.lastIndexOf('.');
const [base, exported] = [handlerSpec.slice(0, dot), handlerSpec.slice(dot + 1)];
const file = ['.js', '.mjs', '.cjs'].map((ext) => path.join(root, base + ext)).find((f) => existsSync(f));
let handler;
try {
  if (!file) throw new Error('Cannot find module ' + base + ' in ' + root);
  handler = (await import(pathToFileURL(file).href))[exported];
  if (typeof handler !== 'function') throw new Error(handlerSpec + ' is undefined or not exported');
} catch (error) {
  report([failure(error, 'Runtime.ImportModuleError')]);
}
let input = '';
for await (const chunk of process.stdin) input += chunk;
const events = JSON.parse(input);
const invocations = [];
for (const event of events) {
  const deadline = Date.now() + Number(timeoutSeconds) * 1000;
  const context = {
    callbackWaitsForEmptyEventLoop: true,
    functionName: process.env.AWS_LAMBDA_FUNCTION_NAME,
    functionVersion: process.env.AWS_LAMBDA_FUNCTION_VERSION,
    invokedFunctionArn: functionArn,
    memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    awsRequestId: randomUUID(),
    logGroupName: process.env.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: process.env.AWS_LAMBDA_LOG_STREAM_NAME,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done() {}, fail() {}, succeed() {},
  };
  try {
    invocations.push({ ok: true, value: (await handler(event, context)) ?? null });
  } catch (error) {
    invocations.push(failure(error));
  }
}
report(invocations);
`;

/** Where a bundle runs, and how. */
export interface BundleOptions {
  readonly node: string;
  readonly fn: DeployedFunction;
  readonly environment: Record<string, string>;
  /** From the events sent to the process's end. @default the function's timeout plus 30 s */
  readonly timeoutMs?: number;
}

/** A bundle's process, started: importing its handler (Lambda's init) and waiting for events. */
export interface StartedBundle {
  /**
   * Hands the process `events`, one after the other, and resolves once it has ended with what
   * each returned or threw (an import that failed is one `Runtime.ImportModuleError`); rejects,
   * with the process's logs, when it ends without a report or outlives the timeout. Once only.
   */
  run(events: readonly unknown[]): Promise<BundleRun>;
  /** Ends a process that was never run (no event), and waits for it. */
  stop(): Promise<void>;
}

/**
 * Starts `fn`'s bundle with `node` in a fresh process with `environment`: it imports the handler
 * at once (as Lambda's init does), so several bundles can import side by side, and waits for
 * {@link StartedBundle.run}.
 */
export function startBundle(options: BundleOptions): StartedBundle {
  const { fn } = options;
  if (!existsSync(fn.bundleDir)) throw new Error(`${fn.logicalId}: no bundle at ${fn.bundleDir}`);
  const arn = `arn:aws:lambda:${options.environment.AWS_REGION}:000000000000:function:${options.environment.AWS_LAMBDA_FUNCTION_NAME}`;
  const child = spawn(
    options.node,
    [
      '--input-type=module',
      '-e',
      CHILD,
      fn.bundleDir,
      fn.handler,
      RUNTIME_SDK_PARENT,
      arn,
      String(fn.timeoutSeconds),
    ],
    { cwd: fn.bundleDir, env: options.environment, stdio: ['pipe', 'pipe', 'pipe', 'pipe'] },
  );
  let logs = '';
  let report = '';
  child.stdout?.on('data', (chunk: Buffer) => {
    logs += chunk.toString('utf8');
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    logs += chunk.toString('utf8');
  });
  (child.stdio[3] as NodeJS.ReadableStream).on('data', (chunk: Buffer) => {
    report += chunk.toString('utf8');
  });
  // A process whose import failed has reported and gone: writing its events then is no error.
  child.stdin?.on('error', () => {});
  const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>(
    (resolve) => {
      child.on('error', (error) => resolve({ code: null, signal: null, error }));
      child.on('close', (code, signal) => resolve({ code, signal }));
    },
  );
  let ran = false;
  return {
    async run(events) {
      if (ran) throw new Error(`${fn.logicalId}'s process has run already`);
      ran = true;
      const started = performance.now();
      const timeoutMs = options.timeoutMs ?? fn.timeoutSeconds * 1000 + 30_000;
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.stdin?.end(JSON.stringify(events));
      const end = await ended;
      clearTimeout(timer);
      if (end.error) throw end.error;
      try {
        const parsed = JSON.parse(report) as Pick<BundleRun, 'nodeVersion' | 'cpuMs' | 'invocations'>;
        return { ...parsed, logs, ms: performance.now() - started };
      } catch {
        const why =
          end.signal === 'SIGKILL' ? `was killed after ${timeoutMs} ms` : `ended (${end.code ?? end.signal})`;
        throw new Error(`${fn.logicalId}'s process ${why} without a report; its output:\n${logs}`);
      }
    },
    async stop() {
      if (!ran) {
        ran = true;
        child.stdin?.end('[]');
      }
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await ended;
      clearTimeout(timer);
    },
  };
}

/** {@link startBundle} and {@link StartedBundle.run} in one. */
export function invokeBundle(
  options: BundleOptions & { readonly events: readonly unknown[] },
): Promise<BundleRun> {
  return startBundle(options).run(options.events);
}
