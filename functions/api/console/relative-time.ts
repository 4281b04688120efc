const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;

/**
 * When an estimated moment comes, as people say it: "in less than a minute", "in about 18 min",
 * "in about 3 h", "in about 2 days"; an estimate already passed is "any moment now" (the work is
 * late, not done). Never a timestamp: a page that shows it re-renders it as time goes by.
 * Undefined for a time it cannot read.
 */
export function relativeFromNow(at: string, now: number): string | undefined {
  const ms = Date.parse(at) - now;
  if (!Number.isFinite(ms)) return undefined;
  if (ms <= 0) return 'any moment now';
  if (ms < MINUTE_MS) return 'in less than a minute';
  const minutes = Math.round(ms / MINUTE_MS);
  if (minutes < 60) return `in about ${minutes} min`;
  const hours = Math.round(ms / HOUR_MS);
  if (hours < 48) return `in about ${hours} h`;
  return `in about ${Math.round(ms / (24 * HOUR_MS))} days`;
}
