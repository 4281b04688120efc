import type { Context, MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { html } from 'hono/html';
import type { Child } from 'hono/jsx';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { HttpError } from '../http-error.js';
import type { SubmittedForm } from './form.js';

/** Largest form body accepted: a form-encoded request is a few times its JSON. */
export const MAX_FORM_BYTES = 64 * 1024;

/** A full page, with its doctype. */
export const page = (
  c: Context,
  node: Child,
  status: ContentfulStatusCode = 200,
  headers: Record<string, string> = {},
): Response | Promise<Response> => c.html(html`<!doctype html>${node}`, status, headers);

/** Refuses a form body over {@link MAX_FORM_BYTES}: a 413, shown as the console's error page. */
export const formBodyLimit = (): MiddlewareHandler =>
  bodyLimit({
    maxSize: MAX_FORM_BYTES,
    onError: () => {
      throw new HttpError(413, 'payload_too_large', `This form is over ${MAX_FORM_BYTES / 1024} KB.`);
    },
  });

/** A form field's text, or '' for a file or a field sent twice. */
export const textOf = (value: SubmittedForm[string] | undefined): string =>
  typeof value === 'string' ? value : '';
