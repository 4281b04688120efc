import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { CfnElement } from 'aws-cdk-lib';
import { createApp } from '../infra/app.js';
import type { StackConfig } from '../infra/config.js';
import type { SynthesizedStack } from './synth-cache.js';

const PROJECT_ROOT = path.join(import.meta.dirname, '..');

/**
 * Synthesizes the CDK app in-process (with the context from cdk.json, as `cdk synth` does, and
 * `generation` merged over cdk.json's; without bundling or the checks that leave the template
 * as it is) and keeps what the local runner reads: the template and
 * the functions' logical ids. Loading aws-cdk-lib and synthesizing take seconds, so the runner
 * reaches this through a child process and its cache (local/synth-cache.ts), never by importing this module.
 * @throws whatever the stack throws for an invalid configuration.
 */
export function synthesizeStack(generation: Partial<StackConfig> = {}): SynthesizedStack {
  const cdkJson = JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'cdk.json'), 'utf8')) as {
    context?: Record<string, unknown>;
  };
  const context = { ...cdkJson.context };
  context.generation = { ...(context.generation as object), ...generation };
  // Bundling does not change the definition; skipping it saves about 0.5 s per function.
  context['aws:cdk:bundling-stacks'] = [];
  // Nor do CDK's built-in CloudFormation validation (about 3 s: a WebAssembly engine) and cdk-nag's
  // rules (about 0.5 s), which only check it: `cdk synth` and `cdk deploy` run both, and so do
  // the infra tests (test/infra/synth.test.ts runs a real `cdk synth`).
  const { app, stack } = createApp({ context, builtinCloudFormationValidation: false }, { nagChecks: false });
  const assembly = app.synth();
  const template = assembly.getStackByName(stack.stackName).template as SynthesizedStack['template'];
  const idOf = (construct: { node: { defaultChild?: unknown } }) =>
    stack.getLogicalId(construct.node.defaultChild as CfnElement);
  return {
    stackName: stack.stackName,
    template,
    functionIds: {
      submit: idOf(stack.functions.submit),
      poll: idOf(stack.functions.poll),
      persist: idOf(stack.functions.persist),
      notify: idOf(stack.functions.notify),
      admit: idOf(stack.functions.admit),
      dispatch: idOf(stack.functions.dispatcher),
      api: idOf(stack.api.handler),
      trigger: idOf(stack.events.trigger),
      reconcile: idOf(stack.reconciler.handler),
    },
  };
}

// Run as a script (by the synth cache, in a child process): a JSON array of configuration
// overrides in argv, a JSON array of the synthesized stacks, in that order, on stdout.
if (import.meta.url === `file://${process.argv[1]}`) {
  const generations = JSON.parse(process.argv[2] ?? '[{}]') as Partial<StackConfig>[];
  process.stdout.write(JSON.stringify(generations.map((generation) => synthesizeStack(generation))));
}
