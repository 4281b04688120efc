import type { CloudFormationTemplate } from './synth-cache.js';

/**
 * A synthesized template's values as a deployment would see them: CloudFormation's intrinsics
 * resolved by the rules CloudFormation documents for each resource type. The local engine runs
 * each function over its environment resolved here (pointed at the local parts by `names`);
 * test/infra/function-environments.test.ts parses every function's with its spec, and
 * test/infra/deployed-bundles.test.ts runs the real bundles with them.
 */

/** Where the stack is "deployed": what CloudFormation would have named each resource. */
export interface Deployment {
  readonly template: CloudFormationTemplate;
  readonly stackName: string;
  readonly region: string;
  readonly account: string;
  /** Physical names by logical id (a table, a bucket…); the others get `<stackName>-<logicalId>`-like names. */
  readonly names?: Readonly<Record<string, string>>;
  /** Where SQS queue URLs point (the SDK sends to a queue's URL). @default SQS's regional endpoint */
  readonly sqsEndpoint?: string;
}

/**
 * The name CloudFormation would give a resource that names none: for a secret, as Secrets Manager
 * generates them (`<prefix>-<random>`, its ARN with a further `-XXXXXX`), so the stack's
 * `Fn::Split`/`Fn::Select` of a secret's ARN back to its name work as on AWS.
 */
export function physicalName(deployment: Deployment, logicalId: string): string {
  const given = deployment.names?.[logicalId];
  if (given) return given;
  const type = deployment.template.Resources[logicalId]?.Type;
  return type === 'AWS::SecretsManager::Secret'
    ? `${logicalId}-a1b2c3d4e5f6`
    : `${deployment.stackName}-${logicalId}`.slice(0, 64);
}

/** What `Ref` of a resource returns, by type, as CloudFormation documents it. */
function refOf(deployment: Deployment, logicalId: string): string {
  const { region, account } = deployment;
  const resource = deployment.template.Resources[logicalId];
  if (!resource) {
    const pseudo: Record<string, string> = {
      'AWS::Region': region,
      'AWS::AccountId': account,
      'AWS::Partition': 'aws',
      'AWS::URLSuffix': 'amazonaws.com',
      'AWS::StackName': deployment.stackName,
    };
    const value = pseudo[logicalId];
    if (value === undefined) throw new Error(`Ref to ${logicalId}: no such resource or pseudo parameter`);
    return value;
  }
  const name = physicalName(deployment, logicalId);
  switch (resource.Type) {
    case 'AWS::Lambda::Function':
    case 'AWS::DynamoDB::Table':
    case 'AWS::S3::Bucket':
    case 'AWS::Events::EventBus':
    case 'AWS::IAM::Role':
    case 'AWS::Logs::LogGroup':
      return name;
    case 'AWS::StepFunctions::StateMachine':
      return `arn:aws:states:${region}:${account}:stateMachine:${name}`;
    case 'AWS::SecretsManager::Secret':
      return `arn:aws:secretsmanager:${region}:${account}:secret:${name}-AbCdEf`;
    case 'AWS::SQS::Queue':
      return `${deployment.sqsEndpoint ?? `https://sqs.${region}.amazonaws.com`}/${account}/${name}`;
    case 'AWS::SNS::Topic':
      return `arn:aws:sns:${region}:${account}:${name}`;
    default:
      throw new Error(`Ref to ${logicalId}: no rule for a ${resource.Type} here (add one)`);
  }
}

/** What `Fn::GetAtt` of a resource's attribute returns. */
function attributeOf(deployment: Deployment, logicalId: string, attribute: string): string {
  const { region, account } = deployment;
  const type = deployment.template.Resources[logicalId]?.Type;
  const name = physicalName(deployment, logicalId);
  const arns: Record<string, string> = {
    'AWS::Lambda::Function': `arn:aws:lambda:${region}:${account}:function:${name}`,
    'AWS::SQS::Queue': `arn:aws:sqs:${region}:${account}:${name}`,
    'AWS::DynamoDB::Table': `arn:aws:dynamodb:${region}:${account}:table/${name}`,
    'AWS::S3::Bucket': `arn:aws:s3:::${name}`,
    'AWS::StepFunctions::StateMachine': `arn:aws:states:${region}:${account}:stateMachine:${name}`,
    'AWS::IAM::Role': `arn:aws:iam::${account}:role/${name}`,
    'AWS::Events::EventBus': `arn:aws:events:${region}:${account}:event-bus/${name}`,
  };
  if (attribute === 'Arn' && type && arns[type]) return arns[type];
  if (type === 'AWS::SQS::Queue' && attribute === 'QueueUrl') return refOf(deployment, logicalId);
  if (type === 'AWS::SQS::Queue' && attribute === 'QueueName') return name;
  if (type === 'AWS::StepFunctions::StateMachine' && attribute === 'Name') return name;
  throw new Error(`Fn::GetAtt ${logicalId}.${attribute}: no rule for a ${type} here (add one)`);
}

/**
 * A template value with its CloudFormation intrinsics resolved as a deployment of
 * `deployment` would: `Ref`, `Fn::GetAtt`, `Fn::Join`, `Fn::Split`, `Fn::Select`, `Fn::Sub`.
 * @throws naming any other intrinsic, or a resource type it has no rule for.
 */
export function resolveTemplateValue(value: unknown, deployment: Deployment): unknown {
  const resolve = (item: unknown) => resolveTemplateValue(item, deployment);
  if (Array.isArray(value)) return value.map(resolve);
  if (value === null || typeof value !== 'object') return value;
  const entries = Object.entries(value as Record<string, unknown>);
  const [key, argument] = entries[0] ?? [];
  if (entries.length === 1 && key && (key === 'Ref' || key.startsWith('Fn::'))) {
    switch (key) {
      case 'Ref':
        return refOf(deployment, String(argument));
      case 'Fn::GetAtt': {
        const [id, attribute] = Array.isArray(argument) ? argument : String(argument).split('.');
        return attributeOf(deployment, String(id), String(attribute));
      }
      case 'Fn::Join': {
        const [separator, parts] = argument as [string, unknown[]];
        return (resolve(parts) as unknown[]).join(separator);
      }
      case 'Fn::Split': {
        const [separator, text] = argument as [string, unknown];
        return String(resolve(text)).split(separator);
      }
      case 'Fn::Select': {
        const [index, list] = argument as [unknown, unknown];
        return (resolve(list) as unknown[])[Number(resolve(index))];
      }
      case 'Fn::Sub': {
        const [text, variables] =
          typeof argument === 'string' ? [argument, {}] : (argument as [string, object]);
        const given = resolve(variables) as Record<string, unknown>;
        return text.replace(/\$\{(!?)([^}]+)\}/g, (_whole, literal: string, name: string) => {
          if (literal) return `\${${name}}`;
          if (name in given) return String(given[name]);
          const [id = '', attribute] = name.split('.');
          return attribute ? attributeOf(deployment, id, attribute) : refOf(deployment, id);
        });
      }
      default:
        throw new Error(`${key} is not resolved here (add it)`);
    }
  }
  return Object.fromEntries(entries.map(([name, item]) => [name, resolve(item)]));
}

/** The local engine's deployment: in region `local` of account 000000000000. */
export const LOCAL_DEPLOYMENT = { stackName: 'local', region: 'local', account: '000000000000' } as const;

/** The logical id of the template's only resource of `type` ('' when there is none). */
export function onlyResourceOf(template: CloudFormationTemplate, type: string): string {
  return Object.entries(template.Resources).find(([, resource]) => resource.Type === type)?.[0] ?? '';
}

/**
 * A function's environment variables as the template sets them, resolved as deployed: each
 * function named by its logical id, the bucket and the table by the local names given.
 */
export function templateEnvironment(
  template: CloudFormationTemplate,
  logicalId: string,
  local: { readonly bucket?: string; readonly table?: string } = {},
): Record<string, string> {
  const resource = template.Resources[logicalId];
  if (resource?.Type !== 'AWS::Lambda::Function') {
    throw new Error(`The template has no function ${logicalId}`);
  }
  const variables = (resource.Properties?.Environment as { Variables?: unknown } | undefined)?.Variables;
  return resolveTemplateValue(variables ?? {}, localDeployment(template, local)) as Record<string, string>;
}

/** The local deployment of `template`: functions named by logical id, bucket and table as given. */
export function localDeployment(
  template: CloudFormationTemplate,
  local: { readonly bucket?: string; readonly table?: string } = {},
): Deployment {
  const names: Record<string, string> = {};
  for (const [id, resource] of Object.entries(template.Resources)) {
    if (resource.Type === 'AWS::Lambda::Function') names[id] = id;
  }
  if (local.bucket) names[onlyResourceOf(template, 'AWS::S3::Bucket')] = local.bucket;
  if (local.table) names[onlyResourceOf(template, 'AWS::DynamoDB::Table')] = local.table;
  return { ...LOCAL_DEPLOYMENT, template, names };
}
