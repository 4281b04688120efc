import type { Server } from 'node:http';
import { serve } from '@hono/node-server';

/** The port asked for is taken by another process. */
export class PortInUseError extends Error {
  override readonly name = 'PortInUseError';
  constructor(
    readonly host: string,
    readonly port: number,
    options?: ErrorOptions,
  ) {
    super(`port ${port} on ${host} is in use`, options);
  }
}

/**
 * Serves `fetch` on `hostname:port` and resolves once it listens.
 *
 * @throws PortInUseError when the port is taken (EADDRINUSE); any other listen error as it is
 */
export function listen(
  fetch: (request: Request) => Response | Promise<Response>,
  port: number,
  hostname: string,
) {
  return new Promise<Server>((resolve, reject) => {
    const started = serve({ fetch, port, hostname }, () => resolve(started as Server));
    (started as Server).once('error', (error: NodeJS.ErrnoException) =>
      reject(error.code === 'EADDRINUSE' ? new PortInUseError(hostname, port, { cause: error }) : error),
    );
  });
}
