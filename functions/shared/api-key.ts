import { getSecret } from '@aws-lambda-powertools/parameters/secrets';
import type { DashScopeEnv } from './config.js';

/** How long a container keeps the key before reading the secret again (lets a rotation take effect). */
const SECRET_MAX_AGE_SECONDS = 300;

/**
 * Returns the function that yields the DashScope API key: from Secrets Manager when a secret id is
 * configured (cached per container by Powertools Parameters), else from the environment.
 * The key is never logged; errors name the secret id, not its value.
 */
export function apiKeyProvider(config: DashScopeEnv): () => Promise<string> {
  const secretId = config.DASHSCOPE_API_KEY_SECRET_ID;
  if (secretId) {
    return async () => {
      const value = await getSecret(secretId, { maxAge: SECRET_MAX_AGE_SECONDS });
      if (typeof value !== 'string' || value.trim() === '') {
        throw new Error(`Secret ${secretId} holds no DashScope API key (expected a plain string value)`);
      }
      return value.trim();
    };
  }
  const key = config.DASHSCOPE_API_KEY;
  if (!key) throw new Error('No DashScope API key configured');
  return async () => key;
}
