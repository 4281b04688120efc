import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import { Architecture, Runtime, Tracing } from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, type NodejsFunctionProps, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';

export interface GenerationFunctionProps
  extends Pick<NodejsFunctionProps, 'environment' | 'timeout' | 'memorySize'> {
  /** Path of the handler module; it exports `handler`. */
  readonly entry: string;
}

/**
 * A NodejsFunction with this project's fixed choices made once: the newest Node runtime in
 * aws-cdk-lib, arm64, X-Ray tracing, a log group with retention, and a minified ESM bundle with
 * source maps. Everything is bundled (no reliance on the runtime's SDK) so the code that runs
 * is the code that was tested.
 */
export class GenerationFunction extends NodejsFunction {
  constructor(scope: Construct, id: string, props: GenerationFunctionProps) {
    const logGroup = new LogGroup(scope, `${id}Logs`, {
      retention: RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    super(scope, id, {
      entry: props.entry,
      handler: 'handler',
      runtime: Runtime.NODEJS_24_X,
      architecture: Architecture.ARM_64,
      tracing: Tracing.ACTIVE,
      memorySize: props.memorySize ?? 256,
      timeout: props.timeout ?? Duration.seconds(30),
      logGroup,
      environment: {
        NODE_OPTIONS: '--enable-source-maps',
        POWERTOOLS_LOG_LEVEL: 'INFO',
        ...props.environment,
      },
      bundling: {
        format: OutputFormat.ESM,
        target: 'node24',
        minify: true,
        sourceMap: true,
        externalModules: [],
        mainFields: ['module', 'main'],
        banner:
          "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
      },
    });
  }
}
