import type { Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/** What the HTTP server does to the connection instead of (or while) sending an answer. */
export type ConnectionAction = { kind: 'reset' } | { kind: 'truncate'; afterBytes: number };

/** How long a truncated answer's first part has to reach the client before the reset. */
const TRUNCATE_SETTLE_MS = 50;

const actions = new WeakMap<Response, ConnectionAction>();

/**
 * Marks `response` so that the HTTP server resets the connection instead of sending it. The
 * response itself is what `app.request()` returns in-process, where there is no connection.
 */
export function resetConnection(response: Response): Response {
  actions.set(response, { kind: 'reset' });
  return response;
}

/** Marks `response` so that the HTTP server sends its headers and `afterBytes` of its body, then resets. */
export function truncateConnection(response: Response, afterBytes: number): Response {
  actions.set(response, { kind: 'truncate', afterBytes });
  return response;
}

/**
 * Applies a response's connection action, if any, on the socket it is answered on: the
 * `@hono/node-server` side of {@link resetConnection} and {@link truncateConnection}.
 */
export async function onConnection(response: Response, socket: Socket | undefined): Promise<Response> {
  const action = actions.get(response);
  if (!action || !socket) return response;
  if (action.kind === 'reset') {
    socket.resetAndDestroy();
    return response;
  }
  const head = new Uint8Array(await response.arrayBuffer()).subarray(0, action.afterBytes);
  let sent = false;
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (!sent) {
        sent = true;
        controller.enqueue(head);
        return;
      }
      // Let the first part reach the client (same process, same event loop), then cut the rest.
      while (socket.writableLength > 0 && !socket.destroyed) await sleep(5);
      await sleep(TRUNCATE_SETTLE_MS);
      socket.resetAndDestroy();
      // Nothing more will come: the server cancels this stream when it sees the connection close.
      await new Promise<never>(() => {});
    },
  });
  return new Response(body, { status: response.status, headers: response.headers });
}
