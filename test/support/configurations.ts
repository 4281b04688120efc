/**
 * The configurations (cdk.json context `generation` overrides) the tests run the local workflow
 * with. The global setup synthesizes them all before any worker starts, in one child process
 * (aws-cdk-lib loaded once): about 3 s for the lot instead of about 2 s each, inside the tests
 * that first asked. A test may use another: it is synthesized when first asked, only slower.
 * Kept free of imports, so the global setup loads nothing else with it.
 */

/** `defaultModel` turbo: the workflow and the API fill it into requests that name no model. */
export const TURBO_DEFAULT = { defaultModel: 'stable-diffusion-3.5-large-turbo' } as const;

/** A 120 s deadline, so a job stuck in DashScope's queue reaches it in a few virtual minutes. */
export const SHORT_DEADLINE = { deadlineSeconds: 120 } as const;

/** The lean monitoring option of the costs page (fewer alarms, no dashboard). */
export const LEAN_MONITORING = { monitoring: 'lean' } as const;

/** The fault suite's: a 600 s deadline (fewer polls to reach it), a 1 MB image cap (small oversize images). */
export const FAULT_SUITE = { deadlineSeconds: 600, maxImageBytes: 1_000_000 } as const;

/** `accounts` emulated DashScope accounts named `account-0`…, admission at `depth` tasks per account. */
export function admissionDeployment(accounts: number, depth: number) {
  return {
    admission: { depth, submitsPerSecond: 2, batchEvery: 4, maxQueueSeconds: 604_800 },
    dashscopeAccounts: Array.from({ length: accounts }, (_, i) => ({
      name: `account-${i}`,
      apiKeySecretName: `sd35/account-${i}`,
    })),
  };
}

/** Every configuration above, and cdk.json's own (`{}`), which most files read. */
export const TEST_CONFIGURATIONS: readonly Record<string, unknown>[] = [
  {},
  TURBO_DEFAULT,
  SHORT_DEADLINE,
  LEAN_MONITORING,
  FAULT_SUITE,
  admissionDeployment(1, 1),
  admissionDeployment(2, 1),
];
