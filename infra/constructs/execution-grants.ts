import { ArnFormat, Stack } from 'aws-cdk-lib';
import { type IRole, PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { StateMachine } from 'aws-cdk-lib/aws-stepfunctions';
import type { Construct } from 'constructs';
import { acknowledge, nagResource } from '../nag.js';

/**
 * Grants `actions` on every execution of one state machine (each execution has its own ARN,
 * `…:execution:<state machine name>:<execution name>`, and names are learned at run time), and
 * acknowledges that wildcard on the role with `why`.
 */
export function grantOnExecutions(
  scope: Construct,
  role: IRole | undefined,
  stateMachine: StateMachine,
  actions: readonly string[],
  why: string,
): void {
  if (!role) return;
  const executions = Stack.of(scope).formatArn({
    service: 'states',
    resource: 'execution',
    resourceName: `${stateMachine.stateMachineName}:*`,
    arnFormat: ArnFormat.COLON_RESOURCE_NAME,
  });
  role.addToPrincipalPolicy(new PolicyStatement({ actions: [...actions], resources: [executions] }));
  acknowledge(role, `AwsSolutions-IAM5[Resource::${nagResource(scope, executions)}]`, why);
}
