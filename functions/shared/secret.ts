import { describeError } from './errors.js';

/** How long a container keeps a secret before reading it again (lets a rotation take effect). */
const SECRET_MAX_AGE_SECONDS = 300;

/** Reads a secret's string value; undefined when the secret holds binary data instead. */
export type SecretReader = (secretId: string) => Promise<string | undefined>;

export interface SecretProviderDeps {
  /** @default GetSecretValue with the Lambda runtime's Secrets Manager client */
  readonly readSecret?: SecretReader;
  /** @default Date.now */
  readonly now?: () => number;
}

/**
 * A function returning a secret string: from Secrets Manager when an id is given (cached per
 * container for 5 minutes, so a rotation takes effect), else the local value; undefined when
 * neither is set. Errors name the secret id and `what`, never the value.
 */
export function secretProvider(
  what: string,
  secretId: string | undefined,
  localValue: string | undefined,
  deps: SecretProviderDeps = {},
): (() => Promise<string>) | undefined {
  if (secretId) {
    const read = cached(
      () => (deps.readSecret ?? readSecretString)(secretId),
      SECRET_MAX_AGE_SECONDS * 1000,
      deps.now ?? Date.now,
    );
    return async () => {
      let value: string | undefined;
      try {
        value = await read();
      } catch (error) {
        throw new Error(`Could not read secret ${secretId}: ${describeError(error)}`, { cause: error });
      }
      if (typeof value !== 'string' || value.trim() === '') {
        throw new Error(`Secret ${secretId} holds no ${what} (expected a plain string value)`);
      }
      return value.trim();
    };
  }
  if (localValue) return async () => localValue;
  return undefined;
}

/** `read`, remembered for `maxAgeMs`; concurrent callers share one read, and a failed read is not kept. */
function cached<T>(read: () => Promise<T>, maxAgeMs: number, now: () => number): () => Promise<T> {
  let entry: { value: Promise<T>; until: number } | undefined;
  return () => {
    const time = now();
    if (!entry || time >= entry.until) {
      const value = read();
      const current = { value, until: time + maxAgeMs };
      entry = current;
      value.catch(() => {
        if (entry === current) entry = undefined;
      });
    }
    return entry.value;
  };
}

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
async function readSecretString(secretId: string): Promise<string | undefined> {
  secretsManager ??= import('@aws-sdk/client-secrets-manager').then((sdk) => ({
    sdk,
    client: new sdk.SecretsManagerClient({}),
  }));
  const { sdk, client } = await secretsManager;
  const answer = await client.send(new sdk.GetSecretValueCommand({ SecretId: secretId }));
  return answer.SecretString;
}
