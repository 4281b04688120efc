import { describe, expect, it } from 'vitest';
import {
  chooseMemory,
  FULL_VCPU_MB,
  type InvocationProfile,
  type NetworkAssumptions,
  projectedDurationMs,
  usdPerMillion,
} from '../../bench/memory-model.js';

const NETWORK: NetworkAssumptions = {
  dashscopeRoundTripMs: 90,
  s3RequestMs: 25,
  eventsRequestMs: 25,
  downloadBytesPerMs: 20_000,
};
const IDLE: InvocationProfile = {
  cpuMs: 0,
  dashscopeCalls: 0,
  downloads: 0,
  downloadBytes: 0,
  s3Calls: 0,
  events: 0,
};

describe('the bench:memory projection', () => {
  it('stretches CPU time by the share of a vCPU the memory buys', () => {
    // Act
    const duration = projectedDurationMs({ ...IDLE, cpuMs: 10 }, FULL_VCPU_MB / 4, NETWORK);

    // Assess
    expect(duration).toBeCloseTo(40, 6);
  });

  it('makes CPU no faster beyond one vCPU (one Node thread)', () => {
    // Act
    const duration = projectedDurationMs({ ...IDLE, cpuMs: 10 }, 3008, NETWORK);

    // Assess
    expect(duration).toBe(10);
  });

  it('keeps network time the same at every size', () => {
    // Prepare
    const profile = { ...IDLE, dashscopeCalls: 2, s3Calls: 1 };

    // Act
    const durations = [128, 1024, 3008].map((memoryMb) => projectedDurationMs(profile, memoryMb, NETWORK));

    // Assess
    expect(durations).toEqual([205, 205, 205]);
  });

  it('bills whole milliseconds of GB-s plus the request', () => {
    // Act
    const usd = usdPerMillion(999.2, 1024);

    // Assess
    expect(usd).toBeCloseTo((1 * 0.0000133334 + 0.0000002) * 1_000_000, 6);
  });

  it('chooses the smallest size for a network-bound function', () => {
    // Act
    const choice = chooseMemory({ ...IDLE, cpuMs: 2, dashscopeCalls: 1 }, [128, 256, 1024], NETWORK, 100);

    // Assess
    expect(choice.memoryMb).toBe(128);
  });

  it('chooses a larger size when the smallest would be too slow', () => {
    // Act
    const choice = chooseMemory(
      { ...IDLE, cpuMs: 40, dashscopeCalls: 1 },
      [128, 256, 512, 1024],
      NETWORK,
      100,
    );

    // Assess
    expect(choice.memoryMb).toBe(512);
  });

  it('applies the allowance per DashScope call when asked (Poll)', () => {
    // Prepare: 8 ms of CPU over 4 queries is 2 ms per query.
    const profile = { ...IDLE, cpuMs: 8, dashscopeCalls: 4 };

    // Act
    const perInvocation = chooseMemory(profile, [128, 256, 1769], NETWORK, 50);
    const perCall = chooseMemory(profile, [128, 256, 1769], NETWORK, 50, true);

    // Assess
    expect(perInvocation.memoryMb).toBe(256);
    expect(perCall.memoryMb).toBe(128);
  });
});
