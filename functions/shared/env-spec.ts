import * as z from 'zod';

/** Raised at cold start when a variable is missing or malformed; names the variable. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/**
 * One environment variable of a function: how the function reads it (a zod schema over the
 * string the environment holds) and how the stack writes it (`encode`, from the value the
 * construct has). `Required` says whether the stack must give it: a variable with a default or
 * marked optional may be left out.
 */
export class Variable<In, Out, Required extends boolean = true> {
  constructor(
    readonly schema: z.ZodType<Out>,
    readonly encode: (value: In) => string,
    readonly required: Required,
  ) {}

  /** Left unset, the function reads `undefined`. */
  optional(): Variable<In, Out | undefined, false> {
    return new Variable(this.schema.optional(), this.encode, false);
  }

  /** Left unset, the function reads `value`. */
  default(value: NoInfer<Out>): Variable<In, Out, false> {
    return new Variable(
      (this.schema as z.ZodType<Out>).default(value as never) as z.ZodType<Out>,
      this.encode,
      false,
    );
  }
}

// biome-ignore lint/suspicious/noExplicitAny: a variable of any type, for the generic helpers below
type AnyVariable = Variable<any, any, boolean>;
export type Variables = Record<string, AnyVariable>;

// biome-ignore lint/suspicious/noExplicitAny: matches any variable (its encoder's parameter is contravariant)
type InputOf<V> = V extends Variable<infer In, any, boolean> ? In : never;
// biome-ignore lint/suspicious/noExplicitAny: as above
type OutputOf<V> = V extends Variable<any, infer Out, boolean> ? Out : never;
type RequiredNames<V extends Variables> = {
  // biome-ignore lint/suspicious/noExplicitAny: as above
  [K in keyof V]: V[K] extends Variable<any, any, true> ? K : never;
}[keyof V];

/** What a function reads from its environment: each variable parsed. */
export type ConfigOf<V extends Variables> = { [K in keyof V]: OutputOf<V[K]> };

/** What the stack gives a function: the required variables' values, and any of the others. */
export type EnvironmentValues<V extends Variables> = {
  [K in RequiredNames<V>]: InputOf<V[K]>;
} & {
  [K in Exclude<keyof V, RequiredNames<V>>]?: InputOf<V[K]> | undefined;
};

/** A function's environment, encoded by its spec: what a construct hands to Lambda. */
export interface EncodedEnvironment {
  /** The spec that encoded it: the infrastructure tests parse the synthesized environment with it. */
  readonly spec: EnvironmentSpec<Variables>;
  readonly variables: Readonly<Record<string, string>>;
}

/**
 * The one definition of a function's environment: the variables it reads and their types. The
 * handler parses with it ({@link EnvironmentSpec.parse}), the CDK construct writes with it
 * ({@link EnvironmentSpec.encode}), and the infrastructure tests parse every synthesized
 * function's environment with its own spec, so a renamed or mis-encoded variable fails a type
 * check or a test, never a cold start on AWS.
 */
export interface EnvironmentSpec<V extends Variables> {
  /** The function's name in messages ("the poll function"). */
  readonly name: string;
  readonly variables: V;
  /** Parses the environment; throws {@link ConfigError} naming every bad variable. */
  parse(env: Readonly<Record<string, string | undefined>>): ConfigOf<V>;
  /** The variables the stack sets for `values` (unset ones left out), typed by the spec. */
  encode(values: EnvironmentValues<V>): EncodedEnvironment;
}

/** Checks that need more than one variable: a message naming the variables, or nothing. */
export type EnvironmentCheck<V extends Variables> = (config: ConfigOf<V>) => string | undefined;

/** Defines a function's environment (see {@link EnvironmentSpec}). */
export function environmentSpec<V extends Variables>(
  name: string,
  variables: V,
  check?: EnvironmentCheck<V>,
): EnvironmentSpec<V> {
  const schema = z.object(
    Object.fromEntries(Object.entries(variables).map(([key, variable]) => [key, variable.schema])),
  );
  const spec: EnvironmentSpec<V> = {
    name,
    variables,
    parse(env) {
      // An empty value is an unset one: CloudFormation cannot remove a variable, only blank it.
      const blankAsUnset = Object.fromEntries(Object.entries(env).filter(([, value]) => value !== ''));
      const parsed = schema.safeParse(blankAsUnset);
      if (!parsed.success) {
        const problems = parsed.error.issues
          .map((issue) => `${issue.path.join('.')}: ${issue.message}`)
          .join('; ');
        throw new ConfigError(`Invalid configuration for the ${name} function: ${problems}`);
      }
      const config = parsed.data as ConfigOf<V>;
      const problem = check?.(config);
      if (problem) throw new ConfigError(`Invalid configuration for the ${name} function: ${problem}`);
      return config;
    },
    encode(values) {
      const encoded: Record<string, string> = {};
      for (const [key, value] of Object.entries(values as Record<string, unknown>)) {
        const variable = variables[key];
        if (!variable) throw new Error(`The ${name} function reads no variable ${key}`);
        if (value !== undefined) encoded[key] = variable.encode(value);
      }
      for (const [key, variable] of Object.entries(variables)) {
        if (variable.required && encoded[key] === undefined) {
          throw new Error(`The ${name} function needs ${key}`);
        }
      }
      return { spec: spec as unknown as EnvironmentSpec<Variables>, variables: encoded };
    },
  };
  return spec;
}

/** JSON in an environment variable, parsed, then checked by `schema`. */
function jsonOf<T extends z.ZodType>(schema: T) {
  return z
    .string()
    .transform((text, ctx) => {
      try {
        return JSON.parse(text) as unknown;
      } catch {
        ctx.addIssue({ code: 'custom', message: 'must be JSON' });
        return z.NEVER;
      }
    })
    .pipe(schema);
}

/** The kinds of variable, each with its reading and its writing. */
export const env = {
  /** A string as it is (`schema` refines it). @default a non-empty string */
  text: <T extends string = string>(schema: z.ZodType<T> = z.string().min(1) as unknown as z.ZodType<T>) =>
    new Variable<T, T>(schema, (value) => value, true),
  /** An integer, positive unless `schema` says otherwise. */
  int: (schema: z.ZodType<number> = z.coerce.number().int().positive()) =>
    new Variable<number, number>(schema, (value) => String(value), true),
  /** JSON, checked by `schema`; written with JSON.stringify from what the schema accepts. */
  json: <S extends z.ZodType>(schema: S) =>
    new Variable<z.input<S>, z.output<S>>(
      jsonOf(schema) as unknown as z.ZodType<z.output<S>>,
      (value) => JSON.stringify(value),
      true,
    ),
  /** A comma-separated list, each item checked by `item`, at least one. */
  list: (item: z.ZodType<string, string>) =>
    new Variable<readonly string[], string[]>(
      z
        .string()
        .transform((value) =>
          value
            .split(',')
            .map((part) => part.trim())
            .filter(Boolean),
        )
        .pipe(z.array(item).min(1)),
      (value) => value.join(','),
      true,
    ),
};
