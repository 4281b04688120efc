import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { CROSS_SITE_FORM, sameOriginForms, securityHeaders } from '../../functions/api/console/security.js';
import { HttpError } from '../../functions/api/http-error.js';
import type { PresignedUrl } from '../../functions/shared/presigned-url.js';

/** The CSRF check alone, its refusal shown as `<status> <type>: <message>`. */
function csrfApp() {
  const app = new Hono();
  app.use('*', sameOriginForms());
  app.post('/form', (c) => c.text('sent'));
  app.get('/form', (c) => c.text('read'));
  app.onError((error, c) =>
    error instanceof HttpError
      ? c.text(`${error.status} ${error.type}: ${error.message}`, error.status)
      : c.text('?', 500),
  );
  return app;
}

const post = (headers: Record<string, string>) =>
  csrfApp().request('http://localhost/form', { method: 'POST', headers, body: 'prompt=a' });
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

describe('the CSRF check', () => {
  it('lets a form through from the same origin, by Origin or by Sec-Fetch-Site', async () => {
    expect(await (await post({ ...FORM, origin: 'http://localhost' })).text()).toBe('sent');
    expect(await (await post({ ...FORM, 'sec-fetch-site': 'same-origin' })).text()).toBe('sent');
  });

  it.each([
    ['another origin', { ...FORM, origin: 'https://evil.example' }],
    ['a cross-site fetch', { ...FORM, 'sec-fetch-site': 'cross-site' }],
    ['neither header', FORM],
    [
      'a multipart form',
      { 'content-type': 'multipart/form-data; boundary=x', origin: 'https://evil.example' },
    ],
  ])('refuses a form from %s with a 403 HttpError', async (_, headers) => {
    const response = await post(headers);

    expect(response.status).toBe(403);
    expect(await response.text()).toBe(`403 forbidden: ${CROSS_SITE_FORM}`);
  });

  it('leaves reads alone', async () => {
    const response = await csrfApp().request('http://localhost/form', {
      headers: { origin: 'https://evil.example' },
    });

    expect(await response.text()).toBe('read');
  });
});

/** The security headers over a page and an asset, with a presigner that may fail. */
function headersApp(presign: (key: string) => Promise<PresignedUrl>) {
  const app = new Hono();
  app.use('*', securityHeaders(presign));
  app.get('/page', (c) => c.html('<p>page</p>'));
  app.get('/asset', (c) => c.text('body{}', 200, { 'Cache-Control': 'public, max-age=300' }));
  return app;
}

const signed = (key: string) =>
  Promise.resolve({
    url: `https://bucket.s3.example/${key}?X-Amz-Signature=x`,
    expiresAt: '2026-03-01T13:00:00Z',
  });

describe('the console security headers', () => {
  it('let images come only from the bucket origin, and forbid framing, sniffing and referrers', async () => {
    const response = await headersApp(signed).request('/page');

    const csp = response.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("img-src 'self' https://bucket.s3.example;");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(response.headers.get('x-frame-options')).toBe('DENY');
    expect(response.headers.get('x-content-type-options')).toBe('nosniff');
    expect(response.headers.get('referrer-policy')).toBe('no-referrer');
  });

  it('keep a page out of caches, but leave an asset its own Cache-Control', async () => {
    const app = headersApp(signed);

    expect((await app.request('/page')).headers.get('cache-control')).toBe('no-store');
    expect((await app.request('/asset')).headers.get('cache-control')).toBe('public, max-age=300');
  });

  it('leave the bucket out while the presigner fails, and ask it again on the next request', async () => {
    // Prepare
    let calls = 0;
    const app = headersApp((key) => {
      calls++;
      return calls === 1 ? Promise.reject(new Error('no credentials yet')) : signed(key);
    });

    // Act
    const first = await app.request('/page');
    const second = await app.request('/page');
    const third = await app.request('/page');

    // Assess
    expect(first.headers.get('content-security-policy')).toContain("img-src 'self';");
    expect(second.headers.get('content-security-policy')).toContain(
      "img-src 'self' https://bucket.s3.example;",
    );
    expect(third.headers.get('content-security-policy')).toContain(
      "img-src 'self' https://bucket.s3.example;",
    );
    expect(calls).toBe(2);
  });
});
