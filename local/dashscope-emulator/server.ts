import type { IncomingMessage, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { API_BASE_PATH, createEmulator } from './app.js';
import { onConnection } from './connection.js';
import type { EmulatorControl, EmulatorOptions } from './types.js';

/** A running emulator. */
export interface RunningEmulator {
  /** DashScope base URL to hand to clients, e.g. `http://127.0.0.1:4010/api/v1`. */
  url: string;
  /** Origin the server listens on, which result-image URLs point at. */
  origin: string;
  /** The API key the emulator accepts (the given one, or the default). */
  apiKey: string;
  control: EmulatorControl;
  /** Stops listening and drops open connections. */
  close(): Promise<void>;
}

/**
 * Starts an emulator on 127.0.0.1 (port 0, the default, picks a free port). Result-image URLs
 * point at this server unless `publicOrigin` says otherwise. With a `stateFile`, the tasks a
 * previous emulator journaled there are back before the server listens.
 */
export async function startEmulator(
  options: Partial<EmulatorOptions> & { port?: number } = {},
): Promise<RunningEmulator> {
  const { port = 0, ...emulatorOptions } = options;
  // The port is only known once listening; the getter is read per request, and no request can
  // arrive before then.
  let origin = '';
  const { app, control, apiKey } = createEmulator({
    ...emulatorOptions,
    publicOrigin: emulatorOptions.publicOrigin ?? (() => origin),
  });
  // Connection faults (reset, truncated body) need the socket, which only this server has.
  const fetch: Parameters<typeof serve>[0]['fetch'] = async (request, env) =>
    onConnection(await app.fetch(request, env), (env.incoming as IncomingMessage).socket);
  const { server, address } = await listen(fetch, port);
  origin = `http://127.0.0.1:${address.port}`;
  return { url: `${origin}${API_BASE_PATH}`, origin, apiKey, control, close: () => closeServer(server) };
}

function listen(
  fetch: Parameters<typeof serve>[0]['fetch'],
  port: number,
): Promise<{ server: Server; address: AddressInfo }> {
  return new Promise((resolve, reject) => {
    const server = serve({ fetch, port, hostname: '127.0.0.1' }, (address) => {
      server.off('error', reject);
      resolve({ server: server as Server, address });
    });
    server.once('error', reject);
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve, reject) => {
    server.close((error) => (error ? reject(error) : resolve()));
    // Keep-alive sockets (fetch keeps them) would hold close() open for seconds.
    server.closeAllConnections();
  });
}

/**
 * How the local runner reaches a running emulator: its endpoint and key, and its result URLs,
 * which it serves itself over plain http from 127.0.0.1.
 */
export function emulatorEndpoint(emulator: Pick<RunningEmulator, 'url' | 'apiKey'>) {
  return {
    baseUrl: emulator.url,
    apiKey: emulator.apiKey,
    resultHosts: ['127.0.0.1'],
    allowHttpResults: true,
  };
}
