import type { DashScopeEnv } from './config.js';
import { type SecretProviderDeps, type SecretReader, secretProvider } from './secret.js';

export type { SecretReader };
export type ApiKeyProviderDeps = SecretProviderDeps;

/**
 * Returns the function that yields the DashScope API key: from Secrets Manager when a secret id is
 * configured (cached per container for 5 minutes, so a rotation takes effect), else from the
 * environment. The key is never logged; errors name the secret id, not its value.
 */
export function apiKeyProvider(config: DashScopeEnv, deps: ApiKeyProviderDeps = {}): () => Promise<string> {
  const provider = secretProvider(
    'DashScope API key',
    config.DASHSCOPE_API_KEY_SECRET_ID,
    config.DASHSCOPE_API_KEY,
    deps,
  );
  if (!provider) throw new Error('No DashScope API key configured');
  return provider;
}
