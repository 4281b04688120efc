import { USD_PER_LAMBDA_GB_SECOND, USD_PER_LAMBDA_REQUEST } from './poll-sim/pricing.js';

/**
 * How `bench:memory` turns what one invocation did locally into its duration and price at each
 * Lambda memory size, the way Lambda Power Tuning reasons (cost = GB-s × price + request), but
 * projected instead of run on Lambda:
 *
 *     duration(m) = cpu × max(1, FULL_VCPU_MB / m) + network
 *
 * Lambda gives a function CPU in proportion to its memory, one full vCPU at 1,769 MB; a Node
 * handler runs on one thread, so more than one vCPU does not make it faster. Network time (round
 * trips to DashScope, S3, EventBridge; downloads) does not shrink with memory.
 */
export const FULL_VCPU_MB = 1769;

/** Memory sizes compared: Lambda's floor, powers of two, one vCPU, and the old default maximum. */
export const MEMORY_SIZES_MB = [128, 256, 512, 1024, 1769, 3008] as const;

/** What one invocation did, measured locally against the emulator and s3rver. */
export interface InvocationProfile {
  /** CPU time of the handler (user + system), at the local machine's full core. */
  readonly cpuMs: number;
  /** Task API calls to DashScope (submit, query, list, cancel). */
  readonly dashscopeCalls: number;
  /** Result images downloaded, and their bytes. */
  readonly downloads: number;
  readonly downloadBytes: number;
  /** S3 requests. */
  readonly s3Calls: number;
  /** Events published to EventBridge. */
  readonly events: number;
}

/** The network the projection assumes on AWS (nothing local measures it). */
export interface NetworkAssumptions {
  /** One round trip to DashScope, ms. */
  readonly dashscopeRoundTripMs: number;
  /** One S3 request in the same region, ms. */
  readonly s3RequestMs: number;
  /** One PutEvents, ms. */
  readonly eventsRequestMs: number;
  /** Download throughput from DashScope's result storage, bytes per ms. */
  readonly downloadBytesPerMs: number;
}

/** Projected duration of the invocation at `memoryMb`, in ms (not yet rounded up for billing). */
export function projectedDurationMs(
  profile: InvocationProfile,
  memoryMb: number,
  network: NetworkAssumptions,
): number {
  const cpu = profile.cpuMs * Math.max(1, FULL_VCPU_MB / memoryMb);
  return cpu + networkMs(profile, network);
}

/** The part of an invocation's duration that memory does not change, ms. */
export function networkMs(profile: InvocationProfile, network: NetworkAssumptions): number {
  return (
    (profile.dashscopeCalls + profile.downloads) * network.dashscopeRoundTripMs +
    profile.downloadBytes / network.downloadBytesPerMs +
    profile.s3Calls * network.s3RequestMs +
    profile.events * network.eventsRequestMs
  );
}

/** Dollars per million invocations of `durationMs` at `memoryMb`: GB-s billed per ms, plus requests. */
export function usdPerMillion(durationMs: number, memoryMb: number): number {
  const gbSeconds = (memoryMb / 1024) * (Math.ceil(durationMs) / 1000);
  return (gbSeconds * USD_PER_LAMBDA_GB_SECOND + USD_PER_LAMBDA_REQUEST) * 1_000_000;
}

export interface MemoryChoice {
  readonly memoryMb: number;
  readonly durationMs: number;
  readonly usdPerMillion: number;
}

/**
 * The cheapest size whose projected duration is within `allowanceMs` of the fastest size's (Power
 * Tuning's "cost" strategy with a latency guard: a slower function delays what a user sees).
 * With `perDashScopeCall`, the guard applies to the duration per DashScope call instead: what
 * delays each of Poll's answers when one invocation queries several times. Ties go to the faster
 * size. Throws when `sizes` is empty.
 */
export function chooseMemory(
  profile: InvocationProfile,
  sizes: readonly number[],
  network: NetworkAssumptions,
  allowanceMs: number,
  perDashScopeCall = false,
): MemoryChoice {
  const options = sizes.map((memoryMb) => {
    const durationMs = projectedDurationMs(profile, memoryMb, network);
    return { memoryMb, durationMs, usdPerMillion: usdPerMillion(durationMs, memoryMb) };
  });
  const per = perDashScopeCall ? Math.max(1, profile.dashscopeCalls) : 1;
  const fastest = Math.min(...options.map((option) => option.durationMs)) / per;
  const eligible = options.filter((option) => option.durationMs / per <= fastest + allowanceMs);
  const best = eligible.sort((a, b) => a.usdPerMillion - b.usdPerMillion || a.durationMs - b.durationMs)[0];
  if (!best) throw new Error('chooseMemory: no memory sizes to choose from');
  return best;
}
