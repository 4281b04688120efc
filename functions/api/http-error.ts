import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { z } from 'zod';
import { detailsOf } from '../shared/zod-details.js';
import type { FieldProblem } from './create-request.js';
import type { ErrorBody } from './schemas.js';

/**
 * Every `error.type` the app answers with. They are stable because clients branch on them
 * (docs/api.md, "Errors"). `forbidden` is the console's refusal of a form sent from another site.
 */
export const HTTP_ERROR_TYPES = [
  'invalid_request',
  'unauthorized',
  'forbidden',
  'not_found',
  'method_not_allowed',
  'conflict',
  'payload_too_large',
  'unsupported_media_type',
  'internal_error',
] as const;

export type HttpErrorType = (typeof HTTP_ERROR_TYPES)[number];

/**
 * The app's one HTTP error, for the API and the console alike: a handler or middleware throws it,
 * and the surface's error handler renders it: the API as JSON (`useJsonErrors`, api-errors.ts),
 * the console as an HTML page (`useErrorPages`, console/error-pages.tsx). Anything else thrown is
 * a 500 that is logged and answered without internals.
 */
export class HttpError extends Error {
  override readonly name = 'HttpError';
  /** The fields refused, for `invalid_request`. */
  readonly details?: readonly FieldProblem[];
  /** Headers the answer carries, such as `WWW-Authenticate` with a 401 or `Allow` with a 405. */
  readonly headers: Readonly<Record<string, string>>;

  constructor(
    readonly status: ContentfulStatusCode,
    readonly type: HttpErrorType,
    message: string,
    options: { readonly details?: readonly FieldProblem[]; readonly headers?: Record<string, string> } = {},
  ) {
    super(message);
    this.details = options.details;
    this.headers = options.headers ?? {};
  }

  /** The API's one error shape: `{"error": {"type", "message", "details"?}}`. */
  toBody(): ErrorBody {
    return {
      error: {
        type: this.type,
        message: this.message,
        ...(this.details ? { details: [...this.details] } : {}),
      },
    };
  }
}

/** A 400 naming each refused field: `Invalid <what>: field: why; …`. */
export function invalidFields(what: string, details: readonly FieldProblem[]): HttpError {
  return new HttpError(
    400,
    'invalid_request',
    `Invalid ${what}: ${details.map((d) => `${d.field}: ${d.message}`).join('; ')}`,
    { details },
  );
}

/** A 400 for what a schema refused, each field named after `prefix` (a header's name). */
export function invalidInput(error: z.ZodError, what: string, prefix = ''): HttpError {
  return invalidFields(what, detailsOf(error, prefix));
}
