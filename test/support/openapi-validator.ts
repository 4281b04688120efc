import { Ajv, type ValidateFunction } from 'ajv';
import addFormatsPlugin, { type FormatsPlugin } from 'ajv-formats';

type Json = Record<string, unknown>;

interface ResponseSpec {
  readonly description?: string;
  readonly headers?: Record<string, { required?: boolean; schema?: Json }>;
  readonly content?: Record<string, { schema: Json }>;
}

interface Operation {
  readonly responses: Record<string, ResponseSpec>;
}

interface OpenApiDocument {
  readonly paths: Record<string, Record<string, Operation>>;
  readonly components: { readonly schemas: Record<string, Json> };
}

/** Each component schema is registered under its own absolute id: `${COMPONENT_BASE}Error`. */
const COMPONENT_BASE = 'https://openapi.invalid/components/schemas/';

/**
 * An OpenAPI 3.0 schema object as JSON Schema draft-07, which Ajv speaks: boolean
 * `exclusiveMinimum`/`exclusiveMaximum` become numbers, `nullable` a type list, and component
 * references point at the components registered under {@link COMPONENT_BASE}.
 */
function toJsonSchema(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(toJsonSchema);
  if (typeof value !== 'object' || value === null) return value;
  const schema: Json = Object.fromEntries(
    Object.entries(value).map(([key, child]) => [key, toJsonSchema(child)]),
  );
  if (typeof schema.$ref === 'string' && schema.$ref.startsWith('#/components/schemas/')) {
    schema.$ref = `${COMPONENT_BASE}${schema.$ref.slice('#/components/schemas/'.length)}`;
  }
  for (const [flag, bound] of [
    ['exclusiveMinimum', 'minimum'],
    ['exclusiveMaximum', 'maximum'],
  ] as const) {
    if (schema[flag] === true) {
      schema[flag] = schema[bound];
      delete schema[bound];
    } else if (schema[flag] === false) {
      delete schema[flag];
    }
  }
  if (schema.nullable === true) {
    schema.type = [schema.type, 'null'];
  }
  delete schema.nullable;
  return schema;
}

/** `/v1/generations/{id}` → a regular expression matching concrete paths. */
function templatePattern(template: string): RegExp {
  const escaped = template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\\?\{[^}]+\\?\}/g, '[^/]+');
  return new RegExp(`^${escaped.replace(/\{[^}]+\}/g, '[^/]+')}$`);
}

/**
 * Checks live responses against an OpenAPI 3.0 document: the path and method must be described
 * (or the answer must be the documented 404 / 405 in the Error shape), the status must be one of
 * the operation's responses (or `default`), the declared headers present, and the body valid JSON
 * of the declared media type that validates against the declared schema, `$ref`s resolved.
 * Returns the problems found, empty when the response conforms.
 */
export function createResponseValidator(document: OpenApiDocument) {
  const ajv = new Ajv({ allErrors: true, strict: true });
  // ajv-formats ships CommonJS: under ESM the plugin is the default export's `default`.
  const module = addFormatsPlugin as unknown as { default?: FormatsPlugin };
  (module.default ?? (addFormatsPlugin as unknown as FormatsPlugin))(ajv);
  for (const [name, schema] of Object.entries(document.components.schemas)) {
    ajv.addSchema(toJsonSchema(schema) as Json, `${COMPONENT_BASE}${name}`);
  }
  const compiled = new Map<string, ValidateFunction>();
  const validatorOf = (schema: Json) => {
    const key = JSON.stringify(schema);
    let validate = compiled.get(key);
    if (!validate) {
      validate = ajv.compile(toJsonSchema(schema) as Json);
      compiled.set(key, validate);
    }
    return validate;
  };
  const errorShape = { $ref: '#/components/schemas/Error' };
  const paths = Object.entries(document.paths).map(([template, item]) => ({
    template,
    item,
    pattern: templatePattern(template),
  }));

  /** Every component schema compiles (Ajv strict: unknown keywords and bad refs are errors). */
  function compileAll(): void {
    for (const name of Object.keys(document.components.schemas)) {
      validatorOf({ $ref: `#/components/schemas/${name}` });
    }
  }

  async function check(method: string, url: string, response: Response): Promise<string[]> {
    const problems: string[] = [];
    // As an HTTP client sends it: dot segments resolved (a base with the path appended, so `//` stays a path).
    const path = new URL(`http://api.invalid${url}`).pathname;
    const text = await response.clone().text();
    const where = `${method} ${path} → ${response.status}`;
    const validateBody = (schema: Json) => {
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        problems.push(`${where}: body is not JSON: ${text.slice(0, 100)}`);
        return;
      }
      const validate = validatorOf(schema);
      if (!validate(body)) {
        problems.push(
          `${where}: body does not match: ${ajv.errorsText(validate.errors)} in ${text.slice(0, 300)}`,
        );
      }
    };

    const match = paths.find((candidate) => candidate.pattern.test(path));
    const operation = match?.item[method.toLowerCase()];
    if (!operation) {
      // The document's own rule: credentials first (401 with a challenge), then 404 for an
      // unknown path and 405 with Allow for a method the path does not serve, all as Error.
      const expected = match ? 405 : 404;
      if (response.status === 401) {
        if (!response.headers.get('www-authenticate'))
          problems.push(`${where}: 401 without WWW-Authenticate`);
      } else if (response.status !== expected) {
        problems.push(`${where}: undocumented ${match ? 'method' : 'path'} answered other than ${expected}`);
      } else if (expected === 405 && !response.headers.get('allow')) {
        problems.push(`${where}: 405 without Allow`);
      }
      validateBody(errorShape);
      return problems;
    }
    const spec = operation.responses[String(response.status)] ?? operation.responses.default;
    if (!spec) {
      problems.push(`${where}: status not in the operation's responses and no default`);
      return problems;
    }
    for (const [name, header] of Object.entries(spec.headers ?? {})) {
      const value = response.headers.get(name);
      if (value === null) {
        if (header.required) problems.push(`${where}: required header ${name} missing`);
        continue;
      }
      if (header.schema) {
        const validate = validatorOf(header.schema);
        if (!validate(value)) problems.push(`${where}: header ${name}: ${ajv.errorsText(validate.errors)}`);
      }
    }
    if (!spec.content) {
      if (text !== '') problems.push(`${where}: body where the document declares none`);
      return problems;
    }
    const contentType = (response.headers.get('content-type') ?? '').split(';')[0]?.trim() ?? '';
    const media = spec.content[contentType];
    if (!media) {
      problems.push(`${where}: content type ${contentType || '(none)'} not declared`);
      return problems;
    }
    validateBody(media.schema);
    return problems;
  }

  return { check, compileAll };
}
