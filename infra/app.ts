import { App, type AppProps } from 'aws-cdk-lib';
import { parseStackConfig } from './config.js';
import { addNagChecks } from './nag.js';
import { GenerationStack } from './stack.js';

/** The stack's id: also the CloudFormation stack name. */
export const STACK_ID = 'Sd35Generation';

/**
 * Builds the CDK app. `cdk synth`/`deploy` run this file; the local runner and the tests call
 * `createApp` in-process, so all three see the same state machine. cdk-nag's AWS Solutions rules
 * run on every synth of it: an unacknowledged finding fails the synth.
 */
export function createApp(props: AppProps = {}): { app: App; stack: GenerationStack } {
  const app = new App(props);
  addNagChecks(app);
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
