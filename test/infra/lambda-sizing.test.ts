import { describe, expect, it } from 'vitest';
import { TAIL_BUDGET_SECONDS } from '../../functions/shared/poll-policy.js';
import { MEMORY_MB } from '../../infra/constructs/lambda-sizing.js';
import { functionId, synthesize } from './template.js';

/** The memory defaults bench:memory chose, and a Poll timeout that covers tail polling. */
describe('Lambda sizing', () => {
  const properties = (prefix: string) =>
    synthesize().template.findResources('AWS::Lambda::Function')[functionId(synthesize().template, prefix)]
      ?.Properties as { MemorySize?: number; Timeout?: number };

  it.each([
    ['FunctionsSubmit', MEMORY_MB.submit],
    ['FunctionsPoll', MEMORY_MB.poll],
    ['FunctionsPersist', MEMORY_MB.persist],
    ['FunctionsNotify', MEMORY_MB.notify],
  ])('gives %s the memory of MEMORY_MB (%i MB)', (prefix, memoryMb) => {
    expect(properties(prefix).MemorySize).toBe(memoryMb);
  });

  it('gives Poll a timeout that covers the tail budget plus a query and a listing at the client timeout', () => {
    // The DashScope client's default query timeout is 10 s (DASHSCOPE_TIMEOUT_MS).
    expect(properties('FunctionsPoll').Timeout).toBeGreaterThanOrEqual(TAIL_BUDGET_SECONDS + 2 * 10);
  });
});
