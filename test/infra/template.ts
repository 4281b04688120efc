import type { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { createApp } from '../../infra/app.js';
import type { GenerationStack } from '../../infra/stack.js';

type Json = Record<string, any>;

interface Synthesized {
  readonly app: App;
  readonly stack: GenerationStack;
  readonly template: Template;
}
const synthesized = new Map<string, Synthesized>();

/**
 * The stack synthesized in-process with `generation` as its configuration, without bundling
 * (cdk-nag runs, as on every synth). Each configuration is synthesized once per test file:
 * callers read the result and never add to it.
 */
export function synthesize(generation: Record<string, unknown> = {}): Synthesized {
  const key = JSON.stringify(generation);
  const known = synthesized.get(key);
  if (known) return known;
  const { app, stack } = createApp({ context: { 'aws:cdk:bundling-stacks': [], generation } });
  const result = { app, stack, template: Template.fromStack(stack) };
  synthesized.set(key, result);
  return result;
}

/** The logical id of the one function whose id starts with `prefix` (e.g. `FunctionsPersist`). */
export function functionId(template: Template, prefix: string): string {
  const ids = Object.keys(template.findResources('AWS::Lambda::Function')).filter((id) =>
    id.startsWith(prefix),
  );
  if (ids.length !== 1) throw new Error(`expected one function ${prefix}, found ${ids.join(', ') || 'none'}`);
  return ids[0] as string;
}

/** Every policy statement attached to the role of the function whose id starts with `prefix`. */
export function statementsOf(template: Template, prefix: string): Json[] {
  const fn = template.findResources('AWS::Lambda::Function')[functionId(template, prefix)];
  const roleId = fn?.Properties.Role['Fn::GetAtt'][0];
  return Object.values(template.findResources('AWS::IAM::Policy'))
    .filter((policy) => policy.Properties.Roles.some((role: Json) => role.Ref === roleId))
    .flatMap((policy) => policy.Properties.PolicyDocument.Statement);
}

export const actionsOf = (statement: Json): string[] => [statement.Action].flat();

/** The ids of this project's functions (CDK adds none of its own any more). */
export const FUNCTION_PREFIXES = [
  'FunctionsSubmit',
  'FunctionsPoll',
  'FunctionsPersist',
  'FunctionsNotify',
  'FunctionsAdmit',
  'FunctionsDispatcher',
  'ApiHandler',
  'EventsTrigger',
  'ReconcilerHandler',
] as const;

/** A target's input as EventBridge renders its input transformer for an event with these fields. */
export function renderedInput(
  target: { InputTransformer?: unknown } | undefined,
  event: Record<string, string>,
): unknown {
  if (!target?.InputTransformer) throw new Error('The target has no input transformer');
  const { InputPathsMap, InputTemplate } = target.InputTransformer as {
    InputPathsMap: Record<string, string>;
    InputTemplate: string;
  };
  let text = InputTemplate;
  for (const [name, jsonPath] of Object.entries(InputPathsMap)) {
    text = text.replaceAll(`<${name}>`, JSON.stringify(event[jsonPath.replace(/^\$\./, '')]));
  }
  return JSON.parse(text);
}
