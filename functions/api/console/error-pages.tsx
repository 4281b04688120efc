import type { Hono } from 'hono';
import { describeError } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';
import { HttpError, type HttpErrorType } from '../http-error.js';
import { MessagePage } from './form-views.js';
import { page } from './page.js';
import { CONSOLE_BASE } from './views.js';

/** Each error page's heading, by the error's type. */
const TITLES: Readonly<Record<HttpErrorType, string>> = {
  invalid_request: 'Not a valid address',
  unauthorized: 'Sign in first',
  forbidden: 'Refused',
  not_found: 'Not found',
  method_not_allowed: 'Not allowed',
  conflict: 'Already sent',
  payload_too_large: 'Too large',
  unsupported_media_type: 'Not a form',
  internal_error: 'Something went wrong',
};

/**
 * The console's errors as pages: every {@link HttpError} a console route or middleware throws is
 * a page with its status, a heading for its type and its message; a console path no route serves
 * is a 404 page (not the API's JSON); anything else is logged and a 500 page without internals.
 * Register it after every console route.
 */
export function useErrorPages(app: Hono, logger: Logger, signedIn: boolean): void {
  app.all(`${CONSOLE_BASE}/*`, () => {
    throw new HttpError(404, 'not_found', 'There is no such page in this console.');
  });
  app.onError((error, c) => {
    const shown =
      error instanceof HttpError
        ? error
        : new HttpError(500, 'internal_error', 'The console could not answer; see the server log.');
    if (shown !== error) {
      logger.error('Unhandled console error', { path: c.req.path, reason: describeError(error) });
    }
    // A 401 page is for a browser without a session: it has nothing to sign out of.
    const withSignOut = signedIn && shown.status !== 401;
    return page(
      c,
      <MessagePage title={TITLES[shown.type]} message={shown.message} signedIn={withSignOut} />,
      shown.status,
      { ...shown.headers },
    );
  });
}
