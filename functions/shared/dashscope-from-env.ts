import { type ApiKeyProviderDeps, apiKeyProvider } from './api-key.js';
import type { DashScopeEnv } from './config.js';
import { createDashScopeClient, type DashScopeClient } from './dashscope/client.js';

/**
 * The DashScope client a function builds once per container from its parsed configuration.
 * `secrets` replaces how the API key's secret is read (the local runner's fault cases).
 */
export function dashscopeFromConfig(
  config: DashScopeEnv,
  fetchImpl?: typeof fetch,
  secrets: ApiKeyProviderDeps = {},
): DashScopeClient {
  return createDashScopeClient({
    baseUrl: config.DASHSCOPE_BASE_URL,
    workspace: config.DASHSCOPE_WORKSPACE,
    apiKey: apiKeyProvider(config, secrets),
    timeoutMs: config.DASHSCOPE_TIMEOUT_MS,
    submitTimeoutMs: config.DASHSCOPE_SUBMIT_TIMEOUT_MS,
    fetch: fetchImpl,
  });
}
