// oidc-provider ships no types; this declares the small part of its API the tests use.
declare module 'oidc-provider' {
  import type { IncomingMessage, ServerResponse } from 'node:http';

  interface ClientMetadata {
    client_id: string;
    client_secret?: string;
    token_endpoint_auth_method?: 'none' | 'client_secret_basic' | 'client_secret_post';
    redirect_uris: string[];
    grant_types?: string[];
    response_types?: string[];
  }

  interface Account {
    accountId: string;
    claims(): Promise<Record<string, unknown>>;
  }

  interface Configuration {
    clients?: ClientMetadata[];
    cookies?: { keys?: string[] };
    claims?: Record<string, string[]>;
    ttl?: Record<string, number>;
    findAccount?: (ctx: unknown, id: string) => Account | Promise<Account | undefined> | undefined;
  }

  export default class Provider {
    constructor(issuer: string, configuration?: Configuration);
    callback(): (request: IncomingMessage, response: ServerResponse) => void;
  }
}
