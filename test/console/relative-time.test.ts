import { describe, expect, it } from 'vitest';
import { relativeFromNow } from '../../functions/api/console/relative-time.js';

const NOW = Date.parse('2026-03-01T12:00:00.000Z');
const at = (ms: number) => new Date(NOW + ms).toISOString();
const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;

describe('relativeFromNow', () => {
  it.each([
    [18 * MINUTE, 'in about 18 min'],
    [18 * MINUTE + 29 * SECOND, 'in about 18 min'],
    [18 * MINUTE + 31 * SECOND, 'in about 19 min'],
    [1 * SECOND, 'in less than a minute'],
    [59 * SECOND, 'in less than a minute'],
    [60 * SECOND, 'in about 1 min'],
    [59 * MINUTE, 'in about 59 min'],
    [59 * MINUTE + 31 * SECOND, 'in about 1 h'],
    [89 * MINUTE, 'in about 1 h'],
    [90 * MINUTE, 'in about 2 h'],
    [47 * HOUR, 'in about 47 h'],
    [48 * HOUR, 'in about 2 days'],
    [10 * 24 * HOUR, 'in about 10 days'],
  ])('says %i ms ahead as "%s"', (ahead, text) => {
    expect(relativeFromNow(at(ahead), NOW)).toBe(text);
  });

  it('says an estimate now or already passed is due any moment, not that it is done', () => {
    expect(relativeFromNow(at(0), NOW)).toBe('any moment now');
    expect(relativeFromNow(at(-5 * MINUTE), NOW)).toBe('any moment now');
  });

  it('reads any ISO 8601 time with an offset', () => {
    expect(relativeFromNow('2026-03-01T13:18:00+01:00', NOW)).toBe('in about 18 min');
  });

  it('gives nothing for a time it cannot read', () => {
    expect(relativeFromNow('soon', NOW)).toBeUndefined();
    expect(relativeFromNow('', NOW)).toBeUndefined();
  });

  it('never shows a number of a timestamp', () => {
    for (const ahead of [0, 30 * SECOND, 7 * MINUTE, 5 * HOUR, 100 * HOUR]) {
      expect(relativeFromNow(at(ahead), NOW)).toMatch(
        /^(any moment now|in (less than a minute|about \d+ (min|h|days)))$/,
      );
    }
  });
});
