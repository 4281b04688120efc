import { describe, expect, it } from 'vitest';
import { issueSession, isValidSession, SESSION_SECONDS } from '../../functions/api/console/session.js';

const TOKEN = 'a-token-of-this-server';
const NOW = Date.parse('2026-03-01T12:00:00.000Z');

describe('console sessions', () => {
  it('accepts a session issued for the token while it lasts', () => {
    expect(isValidSession(issueSession(TOKEN, NOW), TOKEN, NOW + (SESSION_SECONDS - 1) * 1000)).toBe(true);
  });

  it('refuses a session once it is older than its lifetime', () => {
    expect(isValidSession(issueSession(TOKEN, NOW), TOKEN, NOW + (SESSION_SECONDS + 1) * 1000)).toBe(false);
  });

  it('refuses a session issued for another token', () => {
    expect(isValidSession(issueSession('another-token', NOW), TOKEN, NOW)).toBe(false);
  });

  it('refuses a session whose time was moved forward to extend it', () => {
    // Prepare
    const [version, issuedAt, mac] = issueSession(TOKEN, NOW).split('.');

    // Act
    const edited = `${version}.${Number(issuedAt) + 3600}.${mac}`;

    // Assess
    expect(isValidSession(edited, TOKEN, NOW + 3600_000)).toBe(false);
  });

  it.each([undefined, '', 'v1', 'v1.x.y', TOKEN])('refuses %j', (value) => {
    expect(isValidSession(value, TOKEN, NOW)).toBe(false);
  });
});
