import { type App, Stack, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';

/**
 * Runs cdk-nag's AWS Solutions rules on every synth of the app (`cdk synth`, `cdk deploy`, the
 * tests' `Template.fromStack`, the local runner): an unacknowledged finding fails the synth.
 */
export function addNagChecks(app: App): void {
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
}

/**
 * Acknowledges one cdk-nag finding on one resource (or the construct that owns it), with the
 * reason it is accepted. `rule` is the rule id (`AwsSolutions-S1`), or the rule id with the
 * finding for rules that report several per resource (`AwsSolutions-IAM5[Resource::*]`).
 * Only resources are acknowledged, never a whole stack: every finding has its own reason.
 */
export function acknowledge(construct: IConstruct, rule: string, reason: string): void {
  if (construct instanceof Stack) throw new Error(`Acknowledge ${rule} on a resource, not on a stack`);
  Validations.of(construct).acknowledge({ id: rule, reason });
}

/**
 * A token (an ARN built from attributes of other resources) the way cdk-nag writes it in a
 * finding: `Fn::GetAtt` as `<LogicalId.Attribute>`, `Ref` as `<LogicalId>`, `Fn::Join` joined.
 * So an acknowledgment of `AwsSolutions-IAM5[Resource::…]` names the very resource it accepts.
 */
export function nagResource(scope: IConstruct, value: string): string {
  return flatten(Stack.of(scope).resolve(value));
}

function flatten(node: unknown): string {
  if (typeof node === 'string') return node;
  if (Array.isArray(node)) return node.map(flatten).join('');
  if (typeof node === 'object' && node !== null) {
    const record = node as Record<string, unknown>;
    if ('Fn::Join' in record) {
      const [delimiter, parts] = record['Fn::Join'] as [string, unknown[]];
      return parts.map(flatten).join(delimiter);
    }
    if ('Fn::GetAtt' in record) {
      const [logicalId, attribute] = record['Fn::GetAtt'] as [string, string];
      return `<${logicalId}.${attribute}>`;
    }
    if ('Ref' in record) return `<${String(record.Ref)}>`;
  }
  return JSON.stringify(node);
}
