import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../functions/shared/env-spec.js';
import { GenerationFunction } from '../../infra/constructs/generation-function.js';
import { templateEnvironment } from '../../local/template-env.js';
import { admissionDeployment } from '../support/configurations.js';
import { synthesize } from './template.js';

/** What the platform and the construct set besides the function's own variables. */
const PLATFORM_VARIABLES = /^(NODE_OPTIONS|POWERTOOLS_[A-Z_]+|AWS_[A-Z_]+)$/;

/** Configurations that set every optional variable some way: keys, accounts, models, sign-in. */
const CONFIGURATIONS: Record<string, Record<string, unknown>> = {
  'cdk.json': {},
  'everything set': {
    ...admissionDeployment(2, 1),
    defaultModel: 'stable-diffusion-3.5-large-turbo',
    runTimeModel: { overheadSeconds: 2 },
    dashscopeWorkspace: 'ws-1',
    webhooks: true,
    urlExpirySeconds: 43_200,
    apiAuth: {
      mode: 'jwt',
      issuer: 'https://issuer.example.com',
      audience: ['sd35'],
      console: { clientId: 'console-client', clientSecretName: 'sd35/console-client' },
    },
  },
  'everything off': { webhooks: false, monitoring: 'lean', workflowLogging: { level: 'OFF' } },
};

describe.each(Object.entries(CONFIGURATIONS))('every function synthesized with %s', (_, generation) => {
  const { stack, template } = synthesize(generation);
  const functions = stack.node.findAll().filter((node) => node instanceof GenerationFunction);
  const resources = template.toJSON() as Parameters<typeof templateEnvironment>[0];

  it('is one of the stack’s nine functions, each with its spec', () => {
    expect(functions.map((fn) => fn.spec.name).sort()).toEqual([
      'admit',
      'api',
      'dispatch',
      'notify',
      'persist',
      'poll',
      'reconcile',
      'submit',
      'trigger',
    ]);
  });

  it('gives the API the run-time model Admit uses: its start estimates before any pace is observed', () => {
    const environmentOf = (name: string) => {
      const fn = functions.find((each) => each.spec.name === name);
      return templateEnvironment(resources, stack.getLogicalId(fn?.node.defaultChild as never));
    };

    expect(environmentOf('api').RUN_TIME_MODEL).toEqual(environmentOf('admit').RUN_TIME_MODEL);
  });

  it.each(functions.map((fn) => [fn.spec.name, fn] as const))(
    '%s: its spec parses its environment as deployed, and knows every variable in it',
    (_name, fn) => {
      const logicalId = stack.getLogicalId(fn.node.defaultChild as never);
      const environment = templateEnvironment(resources, logicalId);
      // The DashScope key is a secret read at run time; locally the key itself stands in.
      expect(() => fn.spec.parse(environment)).not.toThrow();
      const unknown = Object.keys(environment).filter(
        (name) => !(name in fn.spec.variables) && !PLATFORM_VARIABLES.test(name),
      );
      expect(unknown).toEqual([]);
    },
  );
});

describe('a function spec', () => {
  const { stack } = synthesize({});
  const api = stack.node
    .findAll()
    .find((node) => node instanceof GenerationFunction && node.spec.name === 'api');

  it('refuses a variable it does not read, at synth', () => {
    expect(() => (api as GenerationFunction).addVariables({ NOT_A_VARIABLE: 'x' })).toThrow(
      /The api function reads no variable NOT_A_VARIABLE/,
    );
  });

  it('names the variable when the environment is malformed', () => {
    const spec = (api as GenerationFunction).spec;
    expect(() => spec.parse({ GENERATIONS_TABLE: 'generations', URL_EXPIRY_SECONDS: 'soon' })).toThrow(
      ConfigError,
    );
    expect(() => spec.parse({ GENERATIONS_TABLE: 'generations', URL_EXPIRY_SECONDS: 'soon' })).toThrow(
      /URL_EXPIRY_SECONDS/,
    );
  });
});
