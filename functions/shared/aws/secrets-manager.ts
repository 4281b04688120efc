import type { SecretReader } from '../secret.js';

type SecretsManagerSdk = typeof import('@aws-sdk/client-secrets-manager');
let secretsManager:
  | Promise<{ sdk: SecretsManagerSdk; client: InstanceType<SecretsManagerSdk['SecretsManagerClient']> }>
  | undefined;

/**
 * GetSecretValue through the Secrets Manager client of the Lambda runtime's AWS SDK, imported on
 * first use. The bundles leave that one package out (see generation-function.ts): it is about
 * 300 KB of the SDK, only ever needed on AWS, where the runtime provides it; a container reads a
 * secret once per 5 minutes, and a local run never.
 */
export const readSecretString: SecretReader = async (secretId) => {
  secretsManager ??= import('@aws-sdk/client-secrets-manager').then((sdk) => ({
    sdk,
    client: new sdk.SecretsManagerClient({}),
  }));
  const { sdk, client } = await secretsManager;
  const answer = await client.send(new sdk.GetSecretValueCommand({ SecretId: secretId }));
  return answer.SecretString;
};
