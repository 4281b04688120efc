import { describe, expect, expectTypeOf, it } from 'vitest';
import * as z from 'zod';
import {
  contextObjectSchema,
  contextPath,
  type JsonPath,
  jsonMerge,
  jsonPath,
  parseJsonPath,
  pathsIn,
  schemaAt,
  selectFields,
} from '../../functions/shared/json-path.js';
import {
  type GenerationStatus,
  type TaskState,
  type WorkflowState,
  workflowStateSchema,
} from '../../functions/shared/workflow-state.js';

const state = jsonPath<WorkflowState>();

describe('jsonPath', () => {
  it('writes dotted paths from the keys, typed by the value they select', () => {
    expect(state()).toBe('$');
    expect(state('task')).toBe('$.task');
    expect(state('task', 'status')).toBe('$.task.status');
    expect(state('task', 'error', 'message')).toBe('$.task.error.message');

    expectTypeOf(state('task', 'status')).toEqualTypeOf<JsonPath<GenerationStatus>>();
    // Optional fields select their value where it is present.
    expectTypeOf(state('task')).toEqualTypeOf<JsonPath<TaskState>>();
    expectTypeOf(state('task', 'pollCount')).toEqualTypeOf<JsonPath<number>>();
  });

  it('refuses, at compile time, a field the schema does not have', () => {
    // @ts-expect-error: no such field in the task state
    expect(state('task', 'stauts')).toBe('$.task.stauts');
    // @ts-expect-error: no such field in the state
    expect(state('tasks')).toBe('$.tasks');
    // @ts-expect-error: a scalar has no fields
    expect(state('id', 'length')).toBe('$.id.length');
    // @ts-expect-error: an array's items are not addressed by these paths
    expect(state('result', 'images', 'key')).toBe('$.result.images.key');
  });

  it('refuses, at run time, a key a dotted path cannot hold', () => {
    const loose = jsonPath<Record<string, unknown>>();
    expect(() => loose('a.b')).toThrow(/"a\.b"/);
    expect(() => loose('a[0]')).toThrow();
    expect(() => loose('')).toThrow();
  });
});

describe('contextPath', () => {
  it('writes paths into the context object', () => {
    expect(contextPath('Execution', 'Name')).toBe('$$.Execution.Name');
    expect(contextPath('Task', 'Token')).toBe('$$.Task.Token');
    expectTypeOf(contextPath('Execution', 'StartTime')).toEqualTypeOf<JsonPath<string>>();
    // @ts-expect-error: the context object has no such field
    expect(contextPath('Execution', 'Started')).toBe('$$.Execution.Started');
  });
});

describe('selectFields', () => {
  it('makes each field `k` a `k.$` field selecting its path, in the order given', () => {
    const fields = selectFields<{ id: string; task?: TaskState; at: string }>()({
      id: state('id'),
      task: state('task'),
      at: contextPath('Execution', 'StartTime'),
    });
    expect(fields).toEqual({ 'id.$': '$.id', 'task.$': '$.task', 'at.$': '$$.Execution.StartTime' });
    expect(Object.keys(fields)).toEqual(['id.$', 'task.$', 'at.$']);
  });

  it('refuses, at compile time, a path to a value of another type, a missing field and an unknown one', () => {
    const select = selectFields<{ id: string; seconds?: number }>();
    // @ts-expect-error: a status is not a number
    select({ id: state('id'), seconds: state('task', 'status') });
    // @ts-expect-error: `id` is required
    select({ seconds: state('task', 'pollCount') });
    // @ts-expect-error: no such field in the target
    select({ id: state('id'), idd: state('id') });
    expect(select({ id: state('id') })).toEqual({ 'id.$': '$.id' });
  });
});

describe('jsonMerge', () => {
  it('writes States.JsonMerge, shallow, typed as the merged object', () => {
    const merged = jsonMerge(state('defaults'), state('request'));
    expect(merged).toBe('States.JsonMerge($.defaults, $.request, false)');
    expectTypeOf(merged).toExtend<JsonPath<WorkflowState['request']>>();
  });
});

describe('reading paths back', () => {
  it('parses the dotted paths this module writes, and nothing else', () => {
    expect(parseJsonPath('$')).toEqual({ root: '$', keys: [] });
    expect(parseJsonPath('$.task.status')).toEqual({ root: '$', keys: ['task', 'status'] });
    expect(parseJsonPath('$$.Execution.Id')).toEqual({ root: '$$', keys: ['Execution', 'Id'] });
    expect(parseJsonPath('$.images[0]')).toBeUndefined();
    expect(parseJsonPath('$..key')).toBeUndefined();
    expect(parseJsonPath('task.status')).toBeUndefined();
  });

  it("finds the paths among an intrinsic function's arguments, not inside its string literals", () => {
    expect(pathsIn('$.task')).toEqual(['$.task']);
    expect(pathsIn('States.JsonMerge($.defaults, $.request, false)')).toEqual(['$.defaults', '$.request']);
    expect(pathsIn("States.Format('{} $.not.a.path', $$.Execution.Name)")).toEqual(['$$.Execution.Name']);
  });

  it('finds the schema of the field a path selects, or none', () => {
    expect(schemaAt(workflowStateSchema, ['task', 'status'])).toBeDefined();
    expect(schemaAt(workflowStateSchema, ['task', 'times', 'end'])).toBeDefined();
    expect(schemaAt(workflowStateSchema, ['request', 'prompt'])).toBeDefined();
    expect(schemaAt(workflowStateSchema, ['task', 'stauts'])).toBeUndefined();
    expect(schemaAt(workflowStateSchema, ['id', 'length'])).toBeUndefined();
    // An unknown value may have any field; a record has every key.
    expect(schemaAt(workflowStateSchema, ['notification', 'event'])).toBeDefined();
    expect(schemaAt(z.record(z.string(), z.object({ a: z.string() })), ['x', 'a'])).toBeDefined();
    expect(schemaAt(contextObjectSchema, ['Task', 'Token'])).toBeDefined();
    expect(schemaAt(contextObjectSchema, ['Execution', 'Started'])).toBeUndefined();
  });
});
