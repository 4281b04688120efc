import { Duration } from 'aws-cdk-lib';
import { TAIL_BUDGET_SECONDS } from '../../functions/shared/poll-policy.js';

/**
 * Memory of the workflow's Lambdas, in MB, from `npm run bench:memory` (method and numbers in
 * bench/RESULTS.md): each is the cheapest size whose projected duration stays within 100 ms of
 * the fastest size's (per query, for Poll). Submit, Poll and Notify spend almost all of their time
 * waiting on the network, so Lambda's floor costs least and adds a few ms of CPU; Persist hashes,
 * streams and thumbnails images (sharp), and 1024 MB keeps it within the allowance (512 MB is
 * ~140 ms behind the fastest). Poll's in-invocation sleeps (tail
 * polling) are billed at this size too, which favours the floor further.
 */
export const MEMORY_MB = {
  submit: 128,
  poll: 128,
  persist: 1024,
  notify: 128,
  // Admit and the dispatcher do what Submit does in size: a few DynamoDB calls, no images.
  admit: 128,
  dispatch: 128,
} as const;

/** The DashScope client's default query timeout (`DASHSCOPE_TIMEOUT_MS`), in seconds. */
const QUERY_TIMEOUT_SECONDS = 10;

/**
 * Poll's timeout: the tail-polling budget (which counts from the invocation's first query), then
 * the query and the listing started just before it ran out, each up to the client's timeout, and
 * 10 s for a cold start's secret read and the log flush.
 */
export const POLL_TIMEOUT = Duration.seconds(TAIL_BUDGET_SECONDS + 2 * QUERY_TIMEOUT_SECONDS + 10);
