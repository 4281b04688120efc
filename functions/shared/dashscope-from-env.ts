import { DEFAULT_ACCOUNT } from './admission.js';
import { type ApiKeyProviderDeps, apiKeyProvider } from './api-key.js';
import type { DashScopeAccountEnv, DashScopeEnv } from './config.js';
import { createDashScopeClient, type DashScopeClient } from './dashscope/client.js';

/** A task names an account the function was not configured with. */
export class UnknownAccountError extends Error {
  override readonly name = 'UnknownAccountError';
}

/**
 * The DashScope client a function builds once per container from its parsed configuration, for
 * its default (first) account. `secrets` replaces how the API key's secret is read (the local
 * runner's fault cases).
 */
export function dashscopeFromConfig(
  config: DashScopeEnv,
  fetchImpl?: typeof fetch,
  secrets: ApiKeyProviderDeps = {},
): DashScopeClient {
  return dashscopeAccounts(config, fetchImpl, secrets).client();
}

/** The clients of every configured DashScope account, by name; each built on first use. */
export interface DashScopeAccounts {
  /** The names, the default first. */
  readonly names: readonly string[];
  /**
   * The client of account `name` (the default when undefined).
   * @throws UnknownAccountError when no account has that name
   */
  client(name?: string): DashScopeClient;
}

/** The accounts of `DASHSCOPE_ACCOUNTS`, or the one account of the single-key variables. */
export function dashscopeAccounts(
  config: DashScopeEnv,
  fetchImpl?: typeof fetch,
  secrets: ApiKeyProviderDeps = {},
): DashScopeAccounts {
  const accounts: readonly DashScopeAccountEnv[] = config.DASHSCOPE_ACCOUNTS ?? [
    {
      name: DEFAULT_ACCOUNT,
      secretId: config.DASHSCOPE_API_KEY_SECRET_ID,
      apiKey: config.DASHSCOPE_API_KEY,
      workspace: config.DASHSCOPE_WORKSPACE,
    },
  ];
  const built = new Map<string, DashScopeClient>();
  const names = accounts.map((account) => account.name);
  return {
    names,
    client(name = names[0]) {
      const account = accounts.find((candidate) => candidate.name === name);
      if (!account) {
        throw new UnknownAccountError(
          `DashScope account "${name}" is not configured (configured: ${names.join(', ')})`,
        );
      }
      let client = built.get(account.name);
      if (!client) {
        client = createDashScopeClient({
          baseUrl: account.baseUrl ?? config.DASHSCOPE_BASE_URL,
          workspace: account.workspace,
          apiKey: apiKeyProvider(
            {
              ...config,
              // An account without a key of its own uses the single-key variables'.
              DASHSCOPE_API_KEY_SECRET_ID:
                account.secretId ?? (account.apiKey ? undefined : config.DASHSCOPE_API_KEY_SECRET_ID),
              DASHSCOPE_API_KEY: account.secretId ? undefined : (account.apiKey ?? config.DASHSCOPE_API_KEY),
            },
            secrets,
          ),
          timeoutMs: config.DASHSCOPE_TIMEOUT_MS,
          submitTimeoutMs: config.DASHSCOPE_SUBMIT_TIMEOUT_MS,
          fetch: fetchImpl,
        });
        built.set(account.name, client);
      }
      return client;
    },
  };
}
