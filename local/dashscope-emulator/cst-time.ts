/** China Standard Time is UTC+8 all year (no daylight saving), so a fixed offset is exact. */
const CST_OFFSET_MS = 8 * 60 * 60 * 1000;

const COMPACT_PATTERN = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})$/;

/** Formats epoch ms the way the tasks API does: `2024-06-14 14:30:44.096`, CST, no zone suffix. */
export function formatCstTime(epochMs: number): string {
  return new Date(epochMs + CST_OFFSET_MS).toISOString().replace('T', ' ').replace('Z', '');
}

/**
 * Parses the list API's `YYYYMMDDhhmmss` (read as CST) into epoch ms, or `undefined` when the text
 * is not a real calendar time.
 */
export function parseCompactCstTime(text: string): number | undefined {
  const match = COMPACT_PATTERN.exec(text);
  if (!match) return undefined;
  const [year, month, day, hour, minute, second] = match.slice(1).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const utc = Date.UTC(year, month - 1, day, hour, minute, second);
  // Date.UTC rolls 20240231 over into March: only a time that survives the round trip is real.
  const roundTrip = new Date(utc).toISOString().replace(/\D/g, '').slice(0, 14);
  if (roundTrip !== text) return undefined;
  return utc - CST_OFFSET_MS;
}
