/**
 * Published AWS prices the benchmark turns counts into dollars with: US East (N. Virginia), as
 * listed on the pricing pages below and assumed current on 2026-11-25. Free tiers are left out.
 * Check the pages before relying on the dollar figures; the counts they come from do not change.
 */

/**
 * AWS Step Functions, Standard workflows: $0.025 per 1,000 state transitions, retries included.
 * Source: https://aws.amazon.com/step-functions/pricing/
 */
export const USD_PER_STATE_TRANSITION = 0.025 / 1000;

/**
 * AWS Lambda on Arm (Graviton), the architecture the GenerationFunction construct uses:
 * $0.0000133334 per GB-second (first 7.5 billion GB-s a month), billed per millisecond.
 * Source: https://aws.amazon.com/lambda/pricing/
 */
export const USD_PER_LAMBDA_GB_SECOND = 0.0000133334;

/** AWS Lambda: $0.20 per 1 million requests. Source: https://aws.amazon.com/lambda/pricing/ */
export const USD_PER_LAMBDA_REQUEST = 0.2 / 1_000_000;
