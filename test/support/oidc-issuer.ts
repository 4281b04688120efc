import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider from 'oidc-provider';

/** The console's client id at the test issuer. */
export const CONSOLE_CLIENT_ID = 'sd35-console';

/**
 * A real OpenID Provider (`oidc-provider`) on a loopback port, for tests: its development
 * interactions accept any login name (and any password) and ask for consent on a plain form.
 * It listens before it knows its clients, because the console's redirect URI names the port of a
 * server that needs the issuer's URL to start; `register` adds them.
 */
export interface TestIssuer {
  /** `http://127.0.0.1:PORT` */
  readonly url: string;
  /** Registers the console's public client (and a second client, `other-client`) with this redirect URI. */
  register(redirectUri: string): void;
  close(): Promise<void>;
}

export async function startTestIssuer(): Promise<TestIssuer> {
  let provider: Provider | undefined;
  const server: Server = createServer((request, response) => {
    if (!provider) {
      response.writeHead(503).end();
      return;
    }
    provider.callback()(request, response);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    register(redirectUri) {
      const client = (client_id: string) => ({
        client_id,
        token_endpoint_auth_method: 'none' as const,
        redirect_uris: [redirectUri],
        grant_types: ['authorization_code'],
        response_types: ['code'],
      });
      provider = new Provider(url, {
        clients: [client(CONSOLE_CLIENT_ID), client('other-client')],
        // Fixed keys for the provider's own cookies: a test issuer, nothing to protect.
        cookies: { keys: ['test-issuer-cookie-key-not-secret'] },
        claims: { openid: ['sub'], profile: ['name'] },
        findAccount: (_ctx, id) => ({
          accountId: id,
          claims: async () => ({ sub: id, name: `User ${id}` }),
        }),
      });
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
