import * as z from 'zod';

/**
 * JSONPaths typed by the shape of the data they read, so that the workflow's paths come from the
 * state's zod schema instead of strings that mirror it: a renamed field fails type-checking.
 *
 *   const state = jsonPath<WorkflowState>();
 *   state('task', 'status')                       // '$.task.status', a JsonPath<GenerationStatus>
 *   contextPath('Execution', 'Name')              // '$$.Execution.Name', a JsonPath<string>
 *   selectFields<{ id: string }>()({ id: state('id') })   // { 'id.$': '$.id' }
 *
 * Only the subset the workflow writes: dotted field names from `$` or `$$`, no brackets, filters
 * or wildcards. {@link parseJsonPath}, {@link pathsIn} and {@link schemaAt} read such paths back,
 * for the test that checks every path of the synthesized definition against the schema.
 */

declare const selects: unique symbol;

/** A JSONPath, or an intrinsic function of JSONPaths, that selects a value of type `V`. A string at run time. */
export type JsonPath<V> = string & { readonly [selects]: V };

/** How deep a path may go: deeper than any field of the state, shallow enough for the compiler. */
type Depth = [never, 0, 1, 2, 3, 4, 5, 6];

/** The field names a path may take in a value of type `T`: an object's keys; none in an array or a scalar. */
type FieldsOf<T> = T extends readonly unknown[] ? never : T extends object ? Extract<keyof T, string> : never;

/** Every path into `T` as the tuple of its field names, `[]` (the whole value) included. */
export type PathKeys<T, D extends number = 6> = [D] extends [never]
  ? []
  :
      | []
      | {
          [K in FieldsOf<T>]: [K, ...PathKeys<NonNullable<T[K]>, Depth[D]>];
        }[FieldsOf<T>];

/** The type of the value `P` selects in a `T` (where it is present). */
export type ValueAt<T, P extends readonly string[]> = P extends readonly [
  infer K extends string,
  ...infer Rest extends string[],
]
  ? ValueAt<NonNullable<T[K & keyof T]>, Rest>
  : T;

const FIELD = /^[A-Za-z_][A-Za-z0-9_]*$/;

function render(root: '$' | '$$', keys: readonly string[]): string {
  for (const key of keys) {
    if (!FIELD.test(key)) throw new Error(`"${key}" is not a field name a dotted JSONPath can hold`);
  }
  return [root, ...keys].join('.');
}

/**
 * A builder of paths into data shaped `T` (a state's input, or where a `ResultPath` writes):
 * `jsonPath<T>()('task', 'status')` is `'$.task.status'`, with each key checked against `T`.
 */
export function jsonPath<T>(): <P extends PathKeys<T>>(...keys: P) => JsonPath<ValueAt<T, P>> {
  return (...keys) => render('$', keys) as never;
}

/** The part of the context object (`$$`) the workflow may read. */
export const contextObjectSchema = z.object({
  Execution: z.object({
    /** The execution ARN. */
    Id: z.string(),
    Name: z.string(),
    /** ISO 8601. */
    StartTime: z.string(),
    RoleArn: z.string(),
    Input: z.unknown(),
    RedriveCount: z.number().int(),
  }),
  State: z.object({ Name: z.string(), EnteredTime: z.string(), RetryCount: z.number().int() }),
  StateMachine: z.object({ Id: z.string(), Name: z.string() }),
  /** Only in a Task state. */
  Task: z.object({ Token: z.string() }).optional(),
});
export type ContextObject = z.infer<typeof contextObjectSchema>;

/** A path into the context object: `contextPath('Execution', 'Id')` is `'$$.Execution.Id'`. */
export function contextPath<P extends PathKeys<ContextObject>>(
  ...keys: P
): JsonPath<ValueAt<ContextObject, P>> {
  return render('$$', keys) as never;
}

/** `{ [K in keyof Target]: a path to a value of Target[K] }`, optional where `Target[K]` is. */
export type PathsFor<Target> = { [K in keyof Target]: JsonPath<NonNullable<Target[K]>> };

/**
 * Parameters (or a Lambda payload) whose fields are selected by paths: each field `k` becomes
 * `'k.$'`. The fields are `Target`'s, each path selects a value of its field's type, and every
 * field `Target` requires is there: `selectFields<Target>()({ id: state('id') })` is
 * `{ 'id.$': '$.id' }`. Static fields are spread beside the result.
 */
export function selectFields<Target>(): (paths: PathsFor<Target>) => Readonly<Record<string, string>> {
  return (paths) =>
    Object.fromEntries(
      Object.entries(paths as Record<string, string>).map(([key, path]) => [`${key}.$`, path]),
    );
}

/**
 * `States.JsonMerge(a, b, false)`: the fields of both objects, `b`'s where both have one (a shallow
 * merge).
 */
export function jsonMerge<A extends object, B extends object>(
  a: JsonPath<A>,
  b: JsonPath<B>,
): JsonPath<Omit<A, keyof B> & B> {
  return `States.JsonMerge(${a}, ${b}, false)` as never;
}

/** A dotted path read back: its root (`$` the state, `$$` the context object) and its field names. */
export interface ParsedJsonPath {
  readonly root: '$' | '$$';
  readonly keys: readonly string[];
}

/** Reads back a path this module writes; anything else (brackets, filters, wildcards): undefined. */
export function parseJsonPath(path: string): ParsedJsonPath | undefined {
  const [root, ...keys] = path.split('.');
  if ((root !== '$' && root !== '$$') || !keys.every((key) => FIELD.test(key))) return undefined;
  return { root, keys };
}

/** The paths a `.$` field's value reads: the value itself, or each path among an intrinsic function's arguments. */
export function pathsIn(expression: string): string[] {
  if (!expression.startsWith('States.')) return [expression];
  // Outside its string literals ('…'), an intrinsic's path arguments are the tokens that start with `$`.
  const code = expression.replace(/'(?:[^'\\]|\\.)*'/g, "''");
  return [...code.matchAll(/\$[^\s,()]*/g)].map((match) => match[0]);
}

interface SchemaDef {
  readonly type: string;
  readonly innerType?: z.ZodType;
  readonly shape?: Record<string, z.ZodType>;
  readonly valueType?: z.ZodType;
  readonly options?: readonly z.ZodType[];
  readonly left?: z.ZodType;
  readonly right?: z.ZodType;
  readonly in?: z.ZodType;
  readonly out?: z.ZodType;
  readonly getter?: () => z.ZodType;
}

/**
 * The schema of the value `keys` select in a value `schema` describes, or undefined when there is
 * no such field. Optional, nullable and defaulted fields count as there; a record has every key; an
 * unknown value may have any field.
 */
export function schemaAt(schema: z.ZodType, keys: readonly string[]): z.ZodType | undefined {
  if (keys.length === 0) return schema;
  const [key, ...rest] = keys as [string, ...string[]];
  const def = schema._zod.def as unknown as SchemaDef;
  switch (def.type) {
    case 'optional':
    case 'nullable':
    case 'nonoptional':
    case 'default':
    case 'prefault':
    case 'catch':
    case 'readonly':
      return def.innerType && schemaAt(def.innerType, keys);
    case 'pipe':
      return (def.in && schemaAt(def.in, keys)) ?? (def.out && schemaAt(def.out, keys));
    case 'lazy':
      return def.getter && schemaAt(def.getter(), keys);
    case 'object': {
      const field = def.shape && Object.hasOwn(def.shape, key) ? def.shape[key] : undefined;
      return field && schemaAt(field, rest);
    }
    case 'record':
      return def.valueType && schemaAt(def.valueType, rest);
    case 'union':
      for (const option of def.options ?? []) {
        const found = schemaAt(option, keys);
        if (found) return found;
      }
      return undefined;
    case 'intersection':
      return (def.left && schemaAt(def.left, keys)) ?? (def.right && schemaAt(def.right, keys));
    case 'unknown':
    case 'any':
      return schema;
    default:
      return undefined;
  }
}
