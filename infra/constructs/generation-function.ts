import { AssetStaging, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Architecture, Runtime, Tracing } from 'aws-cdk-lib/aws-lambda';
import {
  type BundlingOptions,
  NodejsFunction,
  type NodejsFunctionProps,
  OutputFormat,
} from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup } from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import type { EncodedEnvironment } from '../../functions/shared/env-spec.js';
import { LAMBDA_PLATFORM, sharpArm64Report } from '../bundle-check.js';
import type { StackConfig } from '../config.js';
import { acknowledge } from '../nag.js';

/**
 * How every Lambda is bundled: minified ESM for the newest Node runtime, with source maps.
 * Everything is bundled (the code that runs is the code that was tested) except the Secrets
 * Manager client: about 300 KB of the AWS SDK that only the API-key read uses, on AWS only, once
 * per container and 5 minutes. It comes from the runtime's own SDK v3 instead, imported on first
 * use (functions/shared/api-key.ts), which keeps Submit and Poll near 130 KB and their module
 * init short. GetSecretValue is a stable API, so the runtime's SDK version is not a risk worth
 * 300 KB per function. `npm run bench:cold` bundles with these very options.
 */
export const LAMBDA_BUNDLING = {
  format: OutputFormat.ESM,
  target: 'node24',
  minify: true,
  sourceMap: true,
  externalModules: ['@aws-sdk/client-secrets-manager'],
  mainFields: ['module', 'main'],
  banner: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
} as const satisfies BundlingOptions;

/**
 * How the packages of {@link GenerationFunctionProps.nodeModules} are installed: CDK runs `npm ci`
 * in the bundle with the project's lock file (exact versions, integrity checked), and these npm
 * settings make it pick the Lambda's platform, linux-arm64 with glibc, whatever machine
 * synthesizes: so an x64 laptop or CI deploys sharp's arm64 build, never its own. The npm cache
 * is preferred, so once it holds those packages a synth needs no network. No install scripts run
 * (none is needed: the native parts come prebuilt in the platform packages).
 *
 * `npm ci` on an x64 host neither installs nor downloads the arm64 packages (optional, for another
 * platform), and this `npm ci` offline leaves them out without an error when the cache lacks them.
 * So the project's `postinstall` (`npm run cache:arm64`, local/synth-check.ts) puts the lock
 * file's linux-arm64 packages in the npm cache, and every bundle with sharp is checked before the
 * synth ends ({@link GenerationFunction}): a synth never yields a bundle without them.
 */
export const LAMBDA_PLATFORM_INSTALL = {
  npm_config_os: LAMBDA_PLATFORM.os,
  npm_config_cpu: LAMBDA_PLATFORM.cpu,
  npm_config_libc: LAMBDA_PLATFORM.libc,
  npm_config_prefer_offline: 'true',
  npm_config_ignore_scripts: 'true',
  npm_config_audit: 'false',
  npm_config_fund: 'false',
} as const;

export interface GenerationFunctionProps {
  /**
   * How long an invocation may run before Lambda stops it.
   * @default 30 seconds (NodejsFunction's own is 3)
   */
  readonly timeout?: NodejsFunctionProps['timeout'];
  /**
   * Memory in MB, which Lambda gives CPU in proportion to (infra/constructs/lambda-sizing.ts
   * sizes each function).
   * @default 256 (NodejsFunction's own is 128)
   */
  readonly memorySize?: NodejsFunctionProps['memorySize'];
  /**
   * Concurrent executions reserved for the function, which are also its cap (the configuration's
   * `reservedConcurrency`).
   * @default none: the function draws on the account's unreserved concurrency, without a cap
   */
  readonly reservedConcurrentExecutions?: NodejsFunctionProps['reservedConcurrentExecutions'];
  /**
   * The function's variables, encoded by its own spec (`functions/<fn>/spec.ts`): the construct
   * never writes a variable by hand, and the infrastructure tests parse the synthesized
   * environment with the same spec.
   */
  readonly environment: EncodedEnvironment;
  /** Path of the handler module; it exports `handler`. */
  readonly entry: string;
  /**
   * Packages installed into the bundle's `node_modules` instead of bundled: native ones esbuild
   * cannot bundle (Persist's sharp), installed for linux-arm64 ({@link LAMBDA_PLATFORM_INSTALL}).
   * @default none
   */
  readonly nodeModules?: readonly string[];
  /** Log level, log retention, the metrics namespace and whether metrics are emitted at all (`monitoring`). */
  readonly config: Pick<StackConfig, 'logLevel' | 'logRetentionDays' | 'metricsNamespace' | 'monitoring'>;
}

/**
 * A NodejsFunction with this project's fixed choices made once: the newest Node runtime in
 * aws-cdk-lib, arm64, X-Ray tracing, the bundle of {@link LAMBDA_BUNDLING}, a log group of its own
 * with the configured retention, and a role of its own that starts with nothing but writing to that
 * log group (no AWSLambdaBasicExecutionRole, whose logs permissions cover every log group). Each
 * function's grants are added by the construct that creates it.
 *
 * A function with `sharp` in its `nodeModules` has its bundle read when the app synthesizes (a
 * construct validation, run after every bundle is staged and before anything is written): if
 * sharp's linux-arm64 addon or libvips is missing or not an AArch64 glibc ELF file, the synth
 * fails with the missing files and the fix (infra/bundle-check.ts). A validation rather than an
 * `afterBundling` command hook: it runs in the app's own process on the staged folder, needs no
 * second Node and no shell, and reads nothing when bundling is skipped (the tests' and the local
 * runner's syntheses, where the asset is the project folder).
 */
export class GenerationFunction extends NodejsFunction {
  /** The spec of the function's environment: what its handler parses at cold start. */
  readonly spec: EncodedEnvironment['spec'];

  constructor(scope: Construct, id: string, props: GenerationFunctionProps) {
    const logGroup = new LogGroup(scope, `${id}Logs`, {
      retention: props.config.logRetentionDays,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    const role = new Role(scope, `${id}Role`, {
      assumedBy: new ServicePrincipal('lambda.amazonaws.com'),
      description: `The ${id} function: its log group, X-Ray, and what its construct grants`,
    });
    logGroup.grantWrite(role);
    acknowledge(
      role,
      'AwsSolutions-IAM5[Resource::*]',
      `X-Ray tracing of the ${id} function: xray:PutTraceSegments and xray:PutTelemetryRecords have no resource-level permissions, so AWS requires "*" (test/infra/production.test.ts checks that nothing else is granted on "*")`,
    );
    super(scope, id, {
      entry: props.entry,
      handler: 'handler',
      runtime: Runtime.NODEJS_24_X,
      architecture: Architecture.ARM_64,
      tracing: Tracing.ACTIVE,
      memorySize: props.memorySize ?? 256,
      timeout: props.timeout ?? Duration.seconds(30),
      reservedConcurrentExecutions: props.reservedConcurrentExecutions,
      logGroup,
      role,
      environment: {
        NODE_OPTIONS: '--enable-source-maps',
        POWERTOOLS_LOG_LEVEL: props.config.logLevel,
        POWERTOOLS_METRICS_NAMESPACE: props.config.metricsNamespace,
        // `lean` pays for no custom metric: Powertools writes no EMF line at all.
        ...(props.config.monitoring === 'lean' ? { POWERTOOLS_METRICS_DISABLED: 'true' } : {}),
        ...props.environment.variables,
      },
      bundling: {
        ...LAMBDA_BUNDLING,
        externalModules: [...LAMBDA_BUNDLING.externalModules],
        ...(props.nodeModules?.length
          ? { nodeModules: [...props.nodeModules], environment: { ...LAMBDA_PLATFORM_INSTALL } }
          : {}),
      },
    });
    this.spec = props.environment.spec;
    if (props.nodeModules?.includes('sharp')) {
      this.node.addValidation({ validate: () => sharpBundleErrors(this, id) });
    }
  }

  /**
   * Sets variables known only after the function exists (a queue made later), encoded by its
   * spec; a variable the spec does not know fails the synth.
   */
  addVariables(values: Readonly<Record<string, unknown>>): void {
    for (const [name, value] of Object.entries(values)) {
      const variable = this.spec.variables[name];
      if (!variable) throw new Error(`The ${this.spec.name} function reads no variable ${name}`);
      if (value !== undefined) this.addEnvironment(name, variable.encode(value));
    }
  }
}

/**
 * Why `fn`'s staged bundle would fail to load sharp on the Lambda (none when bundling was skipped
 * for its stack). The bundle is the staging of the asset `Code.fromAsset` adds as the function's
 * `Code` child; not finding it fails the synth too, so a change in aws-cdk-lib cannot turn the
 * check off unseen.
 */
function sharpBundleErrors(fn: NodejsFunction, id: string): string[] {
  if (!Stack.of(fn).bundlingRequired) return [];
  const staging = fn.node.tryFindChild('Code')?.node.tryFindChild('Stage');
  if (!(staging instanceof AssetStaging)) {
    return [
      `cannot find ${id}'s staged bundle (its Code/Stage child) to check sharp's linux-arm64 binaries in it`,
    ];
  }
  const report = sharpArm64Report(staging.absoluteStagedPath, `${id}'s bundle`);
  return report ? [report] : [];
}
