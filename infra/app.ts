import { App, type AppProps } from 'aws-cdk-lib';
import { parseStackConfig } from './config.js';
import { addNagChecks } from './nag.js';
import { GenerationStack } from './stack.js';

/** The stack's id: also the CloudFormation stack name. */
export const STACK_ID = 'Sd35Generation';

/** How {@link createApp} builds the app, beyond CDK's own props. */
export interface CreateAppOptions {
  /**
   * Run cdk-nag's AWS Solutions rules on synth: an unacknowledged finding fails it. Only the local
   * runner turns them off (they never change the template, and cost about 0.5 s per synthesis):
   * `cdk synth`, `cdk deploy` and the infra tests run them.
   * @default true
   */
  readonly nagChecks?: boolean;
}

/**
 * Builds the CDK app. `cdk synth`/`deploy` run this file; the local runner and the tests call
 * `createApp` in-process, so all three see the same state machine. cdk-nag's AWS Solutions rules
 * run on every synth of it (see {@link CreateAppOptions.nagChecks}): an unacknowledged finding
 * fails the synth.
 */
export function createApp(
  props: AppProps = {},
  options: CreateAppOptions = {},
): { app: App; stack: GenerationStack } {
  const app = new App(props);
  if (options.nagChecks ?? true) addNagChecks(app);
  const config = parseStackConfig(app.node.tryGetContext('generation'));
  const stack = new GenerationStack(app, STACK_ID, {
    config,
    description:
      'Stable Diffusion 3.5 generation: DashScope tasks orchestrated by Step Functions, images kept in S3',
  });
  return { app, stack };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  createApp().app.synth();
}
