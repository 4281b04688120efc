import path from 'node:path';
import type { StateMachineDefinition } from 'aws-local-stepfunctions';
import type { TableTemplate } from './dynamodb.js';
import type { LocalRunnerOptions } from './runner.js';
import {
  type CloudFormationTemplate,
  cachedSynthesis,
  SYNTH_CACHE_DIR_ENV,
  type SynthesizedStack,
} from './synth-cache.js';
import { localDeployment, resolveTemplateValue, templateEnvironment } from './template-env.js';

const PROJECT_ROOT = path.join(import.meta.dirname, '..');

/** The generations table's name in a local server. */
export const LOCAL_TABLE = 'sd35-generations';

/** The stack's functions, as the local engine runs them. */
export type LocalFunctionName = keyof SynthesizedStack['functionIds'];

/** The synthesized stack, as the runner runs it. */
export interface LocalStack extends SynthesizedStack {
  /** The state machine definition from the template, tokens resolved. */
  readonly definition: StateMachineDefinition;
  /** A function's environment as the stack synthesizes it, pointed at the local parts. */
  environment(name: LocalFunctionName): Record<string, string | undefined>;
}

/**
 * Synthesizes the CDK app (with the context from cdk.json, as `cdk synth` does; in a child process,
 * cached under `synthCacheDir` until the stack's sources or `generation` change) and takes from
 * the template the state machine's definition and each function's environment.
 */
export function localStack(options: LocalRunnerOptions): LocalStack {
  const stack = cachedSynthesis({
    dir:
      options.synthCacheDir ??
      (process.env[SYNTH_CACHE_DIR_ENV] || path.join(PROJECT_ROOT, '.local', 'synth-cache')),
    root: PROJECT_ROOT,
    generation: options.generation,
  });
  return {
    ...stack,
    definition: stateMachineDefinition(stack.template),
    // Each function as the stack deploys it: its synthesized environment, pointed at the local parts.
    environment: (name) => ({
      ...functionEnvironment(stack.template, stack.functionIds[name], options),
      ...(name === 'notify' || name === 'reconcile' ? { WEBHOOK_SECRET: options.webhookSecret } : {}),
    }),
  };
}

/**
 * The generations table as the synthesized stack declares it (keys, attributes, indexes), for
 * creating it in a local DynamoDB-compatible server.
 */
export function generationsTableDefinition(template: CloudFormationTemplate): TableTemplate {
  const tables = Object.values(template.Resources).filter((r) => r.Type === 'AWS::DynamoDB::Table');
  if (tables.length !== 1)
    throw new Error(`Expected one DynamoDB table in the template, found ${tables.length}`);
  return tables[0]?.Properties as unknown as TableTemplate;
}

/** The template's state machine definition with its CloudFormation tokens resolved. */
export function stateMachineDefinition(template: CloudFormationTemplate): StateMachineDefinition {
  const machines = Object.values(template.Resources).filter(
    (r) => r.Type === 'AWS::StepFunctions::StateMachine',
  );
  if (machines.length !== 1)
    throw new Error(`Expected one state machine in the template, found ${machines.length}`);
  const raw = machines[0]?.Properties?.DefinitionString;
  return JSON.parse(String(resolveTemplateValue(raw, localDeployment(template)))) as StateMachineDefinition;
}

/** A function's environment as the template sets it, pointed at the local endpoints. */
export function functionEnvironment(
  template: CloudFormationTemplate,
  logicalId: string,
  options: Pick<LocalRunnerOptions, 'dashscope' | 's3' | 'index' | 'environment'>,
): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = {
    ...templateEnvironment(template, logicalId, {
      bucket: options.s3.bucket,
      table: options.index?.table ?? LOCAL_TABLE,
    }),
    ...options.environment,
    DASHSCOPE_BASE_URL: options.dashscope.baseUrl,
    DASHSCOPE_API_KEY: options.dashscope.apiKey,
    DASHSCOPE_API_KEY_SECRET_ID: options.dashscope.apiKeySecret?.id,
    // Locally the webhook secret is given (`webhookSecret`), and no event is ever refused (the
    // local event sink takes them all): no Secrets Manager, no SQS.
    WEBHOOK_SECRET_ID: undefined,
    DEAD_LETTER_QUEUE_URL: undefined,
  };
  if (options.dashscope.resultHosts) env.RESULT_HOSTS = options.dashscope.resultHosts.join(',');
  if (options.dashscope.runTimeModel) env.RUN_TIME_MODEL = JSON.stringify(options.dashscope.runTimeModel);
  if (options.dashscope.accounts) env.DASHSCOPE_ACCOUNTS = JSON.stringify(options.dashscope.accounts);
  else delete env.DASHSCOPE_ACCOUNTS;
  return env;
}
