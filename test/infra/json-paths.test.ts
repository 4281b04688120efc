import { describe, expect, it } from 'vitest';
import type * as z from 'zod';
import { notifyInputSchema } from '../../functions/notify/notify.js';
import { contextObjectSchema, parseJsonPath, pathsIn, schemaAt } from '../../functions/shared/json-path.js';
import { STATE_NAMES } from '../../functions/shared/state-names.js';
import {
  admitInputSchema,
  executionIdentitySchema,
  executionInputSchema,
  submitInputSchema,
  taskInputSchema,
  workflowStateSchema,
} from '../../functions/shared/workflow-state.js';
import { stateMachineDefinition } from '../../local/runner.js';
import { synthesize } from './template.js';

/**
 * Every JSONPath of the synthesized definition against the state's schemas: the type-checking of
 * infra/constructs/workflow.ts (paths built with functions/shared/json-path.ts) catches a renamed
 * field at compile time; this catches a path that is not in the schema however it got there.
 */

type Json = Record<string, any>;

const CONFIGS = {
  default: {},
  'a default model (Apply defaults)': { defaultModel: 'stable-diffusion-3.5-large-turbo' },
};

const definitionOf = (generation: Record<string, unknown>): Json =>
  stateMachineDefinition(synthesize(generation).template.toJSON() as never) as unknown as Json;

/** The state types this check knows the data of: no Map or Parallel (their paths read other data). */
const KNOWN_TYPES = new Set(['Pass', 'Task', 'Choice', 'Wait', 'Succeed', 'Fail']);

/** One path, where it is: the state and the field (`Parameters.Payload.task.$`, `Catch[0].ResultPath`). */
interface PathUse {
  readonly state: string;
  readonly field: string;
  readonly path: string;
}

/**
 * Every path in a state: the value of each `….$` field (or the paths among its intrinsic's
 * arguments), each `…Path` field (InputPath, ResultPath, SecondsPath, ErrorPath, StringEqualsPath…)
 * and each Choice `Variable`, at any depth.
 */
function pathsOfState(state: string, value: unknown, field = ''): PathUse[] {
  if (Array.isArray(value)) return value.flatMap((item, i) => pathsOfState(state, item, `${field}[${i}]`));
  if (typeof value !== 'object' || value === null) return [];
  return Object.entries(value).flatMap(([key, inner]) => {
    const at = field ? `${field}.${key}` : key;
    if (typeof inner === 'string' && key.endsWith('.$'))
      return pathsIn(inner).map((path) => ({ state, field: at, path }));
    if (typeof inner === 'string' && (key.endsWith('Path') || key === 'Variable'))
      return [{ state, field: at, path: inner }];
    return pathsOfState(state, inner, at);
  });
}

const pathsOf = (definition: Json): PathUse[] =>
  Object.entries(definition.States as Record<string, Json>).flatMap(([name, state]) =>
    pathsOfState(name, state),
  );

/** What a path reads: `$$` the context object; `$` the state's input, or its output for ResultPath and OutputPath. */
function schemaFor(use: PathUse, definition: Json): z.ZodType {
  const root = parseJsonPath(use.path)?.root;
  if (root === '$$') return contextObjectSchema;
  if (/(^|\.)(ResultPath|OutputPath)$/.test(use.field)) return workflowStateSchema;
  return use.state === definition.StartAt ? executionInputSchema : workflowStateSchema;
}

/** The paths of `definition` that are not dotted paths to a field of the schema they read, with why. */
function unresolved(definition: Json): string[] {
  return pathsOf(definition).flatMap((use) => {
    const where = `${use.state}: ${use.field} = ${use.path}`;
    const parsed = parseJsonPath(use.path);
    if (!parsed) return [`${where}: not a dotted path`];
    if (parsed.root === '$$' && parsed.keys[0] === 'Task' && definition.States[use.state]?.Type !== 'Task')
      return [`${where}: $$.Task exists only in a Task state`];
    return schemaAt(schemaFor(use, definition), parsed.keys) ? [] : [`${where}: no such field in the schema`];
  });
}

/** Each Lambda Task's input schema, by state name: its payload's fields must be that schema's. */
const PAYLOAD_SCHEMAS: Record<string, z.ZodObject> = {
  [STATE_NAMES.admit]: admitInputSchema,
  [STATE_NAMES.submit]: submitInputSchema,
  [STATE_NAMES.poll]: taskInputSchema,
  [STATE_NAMES.persist]: taskInputSchema,
  [STATE_NAMES.notifySucceeded]: notifyInputSchema,
  [STATE_NAMES.notifyFailed]: notifyInputSchema,
  [STATE_NAMES.notifySucceededLastAttempt]: notifyInputSchema,
  [STATE_NAMES.notifyFailedLastAttempt]: notifyInputSchema,
};

/**
 * A Lambda Task's payload: its Parameters when it invokes the function directly (the response
 * only), else the `Payload` of the `lambda:invoke` integration (Admit's `.waitForTaskToken`).
 */
const payloadOf = (state: Json): Json =>
  String(state.Resource).includes(':states:::lambda:invoke') ? state.Parameters?.Payload : state.Parameters;

/** The payload fields a Lambda's schema does not know, and the required ones the payload lacks. */
function payloadMismatches(definition: Json): string[] {
  return Object.entries(definition.States as Record<string, Json>)
    .filter(([, state]) => state.Type === 'Task')
    .flatMap(([name, state]) => {
      const schema = PAYLOAD_SCHEMAS[name];
      if (!schema) return [`${name}: a Task without an input schema in PAYLOAD_SCHEMAS`];
      const fields = Object.keys(payloadOf(state) ?? {}).map((key) => key.replace(/\.\$$/, ''));
      const known = { ...schema.shape, ...executionIdentitySchema.shape } as Record<string, z.ZodType>;
      const unknown = fields.filter((field) => !(field in known)).map((field) => `${name}: ${field} unknown`);
      const missing = Object.entries(known)
        .filter(
          ([field, fieldSchema]) => !fields.includes(field) && !fieldSchema.safeParse(undefined).success,
        )
        .map(([field]) => `${name}: ${field} missing`);
      return [...unknown, ...missing];
    });
}

describe.each(Object.entries(CONFIGS))('the synthesized definition (%s)', (_, generation) => {
  const definition = definitionOf(generation);

  it('has only state types whose data this check knows, and only the state names of STATE_NAMES', () => {
    const states = Object.entries(definition.States as Record<string, Json>);
    expect(states.filter(([, state]) => !KNOWN_TYPES.has(state.Type))).toEqual([]);
    expect(states.some(([, state]) => 'ResultSelector' in state)).toBe(false);
    const names = new Set<string>(Object.values(STATE_NAMES));
    expect(states.map(([name]) => name).filter((name) => !names.has(name))).toEqual([]);
  });

  it('reads and writes every path at a field of the state schema (or of the context object)', () => {
    const uses = pathsOf(definition);
    // Not vacuous: every kind of path the workflow has is found.
    const kind = (field: string) => (field.endsWith('.$') ? '….$' : field.replace(/^.*[.\]]/, ''));
    expect(new Set(uses.map((use) => kind(use.field)))).toEqual(
      new Set(['….$', 'CausePath', 'ErrorPath', 'ResultPath', 'SecondsPath', 'Variable']),
    );
    expect(uses.length).toBeGreaterThan(40);
    expect(unresolved(definition)).toEqual([]);
  });

  it("gives each Lambda exactly its input schema's fields (and the execution's identity)", () => {
    expect(payloadMismatches(definition)).toEqual([]);
  });
});

describe('the check', () => {
  const definition = definitionOf({});

  it('reports a path that is not in the schema, wherever it is', () => {
    const broken = structuredClone(definition);
    broken.States[STATE_NAMES.check].Choices[0].Variable = '$.task.stauts';
    broken.States[STATE_NAMES.wait].SecondsPath = '$.task.nextPoll';
    broken.States[STATE_NAMES.poll].Parameters['task.$'] = '$.tasks';
    broken.States[STATE_NAMES.submit].ResultPath = '$.taks';
    broken.States[STATE_NAMES.failed].CausePath = '$.failure.cause';
    broken.States[STATE_NAMES.init].Parameters['id.$'] = '$$.Execution.Nme';
    broken.States[STATE_NAMES.deadlineExceeded].Parameters['Cause.$'] = 'States.Format($.task.error.msg)';
    broken.States[STATE_NAMES.init].Parameters['request.$'] = '$.request';
    expect(unresolved(broken)).toEqual([
      'Init: Parameters.id.$ = $$.Execution.Nme: no such field in the schema',
      // Init reads the execution input, the request itself.
      'Init: Parameters.request.$ = $.request: no such field in the schema',
      'Submit: ResultPath = $.taks: no such field in the schema',
      'Wait: SecondsPath = $.task.nextPoll: no such field in the schema',
      'Poll: Parameters.task.$ = $.tasks: no such field in the schema',
      'Check status: Choices[0].Variable = $.task.stauts: no such field in the schema',
      'Deadline exceeded: Parameters.Cause.$ = $.task.error.msg: no such field in the schema',
      'Failed: CausePath = $.failure.cause: no such field in the schema',
    ]);
  });

  it('reports a path it cannot read, and the task token outside a Task', () => {
    const broken = structuredClone(definition);
    broken.States[STATE_NAMES.wait].SecondsPath = '$.task[0]';
    broken.States[STATE_NAMES.init].Parameters['token.$'] = '$$.Task.Token';
    expect(unresolved(broken)).toEqual([
      'Init: Parameters.token.$ = $$.Task.Token: $$.Task exists only in a Task state',
      'Wait: SecondsPath = $.task[0]: not a dotted path',
    ]);
  });

  it("reports a payload field a Lambda's schema does not know, and a required one missing", () => {
    const broken = structuredClone(definition);
    const payload = broken.States[STATE_NAMES.submit].Parameters;
    payload['grant.$'] = payload['admission.$'];
    delete payload['admission.$'];
    delete broken.States[STATE_NAMES.poll].Parameters['task.$'];
    delete broken.States[STATE_NAMES.admit].Parameters.Payload['taskToken.$'];
    expect(payloadMismatches(broken)).toEqual([
      'Admit: taskToken missing',
      'Submit: grant unknown',
      'Poll: task missing',
    ]);
  });
});
