import type { Hono } from 'hono';
import { CONSOLE_SCRIPT, CONSOLE_STYLES } from './assets.js';
import { FAVICON_CACHE_CONTROL, FAVICON_SVG, FAVICON_SVG_NAME } from './favicon.js';
import { CONSOLE_BASE } from './views.js';

/** Served to anyone, signed in or not: each says how long it may be cached. */
const ASSETS = [
  ['console.js', CONSOLE_SCRIPT, 'text/javascript; charset=utf-8', 'public, max-age=300'],
  ['console.css', CONSOLE_STYLES, 'text/css; charset=utf-8', 'public, max-age=300'],
  // Named after its content: it can be cached for a year.
  [FAVICON_SVG_NAME, FAVICON_SVG, 'image/svg+xml', FAVICON_CACHE_CONTROL],
] as const;

/** The console's script, stylesheet and icon under `/console/assets/`, from the bundle itself. */
export function mountAssets(app: Hono): void {
  for (const [name, body, type, cacheControl] of ASSETS) {
    app.get(`${CONSOLE_BASE}/assets/${name}`, (c) =>
      c.body(body, 200, { 'Content-Type': type, 'Cache-Control': cacheControl }),
    );
  }
}
