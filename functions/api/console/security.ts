import type { MiddlewareHandler } from 'hono';
import { csrf } from 'hono/csrf';
import type { GenerationsDeps } from '../generations.js';
import { HttpError } from '../http-error.js';

/**
 * The headers of every console answer: a strict CSP without inline script whose only other image
 * origin is the bucket's, no framing, no sniffing, no referrer, and `no-store` unless the answer
 * says how it is cached (pages hold presigned links that expire; the assets say their own).
 */
export function securityHeaders(presign: GenerationsDeps['presign']): MiddlewareHandler {
  // Images come from presigned URLs on the bucket's origin, learnt from one signed link.
  let imageOrigin: Promise<string> | undefined;
  const imageOriginOf = () => {
    imageOrigin ??= presign('generations/').then(
      (signed) => new URL(signed.url).origin,
      () => {
        imageOrigin = undefined;
        return '';
      },
    );
    return imageOrigin;
  };
  return async (c, next) => {
    await next();
    const images = await imageOriginOf();
    c.header(
      'Content-Security-Policy',
      [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        `img-src 'self'${images ? ` ${images}` : ''}`,
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
      ].join('; '),
    );
    c.header('X-Content-Type-Options', 'nosniff');
    c.header('X-Frame-Options', 'DENY');
    c.header('Referrer-Policy', 'no-referrer');
    if (!c.res.headers.has('Cache-Control')) c.header('Cache-Control', 'no-store');
  };
}

/** Why a form from another site is refused: the console's 403 page says it. */
export const CROSS_SITE_FORM =
  'This form was not sent from this console, so it was refused (CSRF protection).';

/**
 * Refuses a form POST another site made the browser send (CSRF) with a 403 {@link HttpError}.
 * The check is Hono's (`Sec-Fetch-Site: same-origin`, or an `Origin` equal to the request's); its
 * only throw is its refusal, and any throw refuses: the check fails closed.
 */
export function sameOriginForms(): MiddlewareHandler {
  const check = csrf();
  return async (c, next) => {
    let allowed = false;
    try {
      await check(c, async () => {
        allowed = true;
      });
    } catch {
      allowed = false;
    }
    if (!allowed) throw new HttpError(403, 'forbidden', CROSS_SITE_FORM);
    return next();
  };
}
