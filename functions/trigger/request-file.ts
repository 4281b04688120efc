import type { z } from 'zod';
import {
  type GenerationRequest,
  generationRequestSchema,
  type Model,
  withDefaultModel,
} from '../shared/generation-request.js';
import { detailsOf } from '../shared/zod-details.js';

export type ParsedLine =
  | { readonly line: number; readonly request: GenerationRequest }
  | {
      readonly line: number;
      readonly error: {
        readonly type: 'invalid_request';
        readonly message: string;
        readonly details: Array<{ field: string; message: string }>;
      };
    };

/**
 * Parses a request file: a `.json` file holds one request (line 1); a `.jsonl` file one request
 * per non-blank line, numbered from 1 as in an editor. Each is validated with the same schema as
 * the API; a bad line is reported with its number and reason and does not stop the others.
 * A request that names no model gets `defaultModel` (the deployment's), else the schema's.
 */
export function parseRequestFile(key: string, text: string, defaultModel?: Model): ParsedLine[] {
  if (key.endsWith('.jsonl')) {
    return text
      .split(/\r?\n/)
      .map((content, index) => ({ content, line: index + 1 }))
      .filter(({ content }) => content.trim() !== '')
      .map(({ content, line }) => parseOne(content, line, defaultModel));
  }
  return [parseOne(text, 1, defaultModel)];
}

/**
 * Validates one request that arrived as a value (an event's detail, a schedule's request) with
 * the API's schema, filling in `defaultModel` when it names none.
 */
export function parseRequestValue(
  value: unknown,
  defaultModel?: Model,
): { readonly request: GenerationRequest } | { readonly error: ReturnType<typeof invalidValue> } {
  const parsed = generationRequestSchema.safeParse(withDefaultModel(value, defaultModel));
  return parsed.success ? { request: parsed.data } : { error: invalidValue(parsed.error) };
}

function invalidValue(error: z.ZodError) {
  const details = detailsOf(error);
  return {
    type: 'invalid_request' as const,
    message: details.map((d) => `${d.field}: ${d.message}`).join('; '),
    details,
  };
}

function parseOne(text: string, line: number, defaultModel: Model | undefined): ParsedLine {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    const reason = `is not valid JSON (${(error as Error).message})`;
    return {
      line,
      error: {
        type: 'invalid_request',
        message: `line ${line}: ${reason}`,
        details: [{ field: '(line)', message: reason }],
      },
    };
  }
  const parsed = generationRequestSchema.safeParse(withDefaultModel(value, defaultModel));
  if (parsed.success) return { line, request: parsed.data };
  return { line, error: invalidLine(line, parsed.error) };
}

function invalidLine(line: number, error: z.ZodError) {
  const details = detailsOf(error);
  return {
    type: 'invalid_request' as const,
    message: `line ${line}: ${details.map((d) => `${d.field}: ${d.message}`).join('; ')}`,
    details,
  };
}
