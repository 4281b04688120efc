import type { MiddlewareHandler } from 'hono';
import * as z from 'zod';

const HEADER_END = '</header>';

const engineStatusSchema = z.object({
  owner: z.object({ pid: z.int(), kind: z.enum(['server', 'generate']) }),
  waiting: z.int().nonnegative(),
  granted: z.int().nonnegative(),
  running: z.int().nonnegative(),
  stalled: z.array(z.unknown()),
});

/**
 * The engine's status line: `<p class="engine-status" role="status">` with who runs the
 * executions and the counts (numbers and fixed words only: nothing in it needs escaping).
 */
export async function engineStatusLine(health: () => Promise<Record<string, unknown>>): Promise<string> {
  const parsed = engineStatusSchema.safeParse(await health().catch(() => undefined));
  if (!parsed.success) return '<p class="engine-status" role="status">Local engine: not answering</p>';
  const { owner, waiting, granted, running, stalled } = parsed.data;
  const who = owner.kind === 'server' ? 'npm start' : 'npm run generate';
  const parts = [`${waiting} waiting`, `${granted} granted`, `${running} running`];
  if (stalled.length > 0) parts.push(`<strong>${stalled.length} stalled</strong>`);
  return `<p class="engine-status" role="status">Local engine: ${who} (PID ${owner.pid}) · ${parts.join(' · ')}</p>`;
}

/** Puts the engine's status line under the navigation of every HTML page (error pages too). */
export function withEngineStatus(health: () => Promise<Record<string, unknown>>): MiddlewareHandler {
  return async (c, next) => {
    await next();
    if (!c.res.headers.get('Content-Type')?.startsWith('text/html')) return;
    const body = await c.res.text();
    if (!body.includes(HEADER_END)) {
      c.res = new Response(body, c.res);
      return;
    }
    const line = await engineStatusLine(health);
    c.res = new Response(body.replace(HEADER_END, `${HEADER_END}${line}`), c.res);
  };
}
