import { createHash } from 'node:crypto';
import * as z from 'zod';
import type { ListPosition } from '../shared/generation-index.js';
import {
  type GenerationStatus,
  generationIdSchema,
  generationStatusSchema,
} from '../shared/workflow-state.js';

/** A cursor this API did not issue, was edited, or belongs to a walk with another status filter. */
export class InvalidCursorError extends Error {
  override readonly name = 'InvalidCursorError';
}

const payloadSchema = z.strictObject({
  v: z.literal(1),
  /** The status filter of the walk: a cursor continues only the walk that issued it. */
  s: generationStatusSchema.nullable(),
  c: z.iso.datetime(),
  i: generationIdSchema,
});

const CHECK_LENGTH = 22;
const checkOf = (body: string) =>
  createHash('sha256').update(`sd35-cursor:${body}`).digest('base64url').slice(0, CHECK_LENGTH);

/**
 * An opaque, tamper-evident list cursor: the position after which the walk continues (the last
 * item's creation time and id) and the walk's status filter, base64url JSON with a check digest.
 * Keyset, not offset: generations created during a walk sort before its position, so a walk
 * returns every generation that existed when it began exactly once. The digest makes an edited
 * cursor evident; it is not a secret, because a cursor grants nothing a caller cannot list anyway.
 */
export function encodeCursor(status: GenerationStatus | undefined, position: ListPosition): string {
  const body = Buffer.from(
    JSON.stringify({ v: 1, s: status ?? null, c: position.createdAt, i: position.id }),
    'utf8',
  ).toString('base64url');
  return `${body}.${checkOf(body)}`;
}

/** @throws InvalidCursorError for anything {@link encodeCursor} did not produce for this filter */
export function decodeCursor(cursor: string, status: GenerationStatus | undefined): ListPosition {
  const [body, check, extra] = cursor.split('.');
  if (!body || !check || extra !== undefined || check !== checkOf(body) || !/^[\w-]+$/.test(body)) {
    throw new InvalidCursorError('is not a cursor this API issued');
  }
  let payload: unknown;
  try {
    payload = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'));
  } catch {
    throw new InvalidCursorError('is not a cursor this API issued');
  }
  const parsed = payloadSchema.safeParse(payload);
  if (!parsed.success) throw new InvalidCursorError('is not a cursor this API issued');
  if (parsed.data.s !== (status ?? null)) {
    throw new InvalidCursorError('belongs to a listing with another status filter');
  }
  return { createdAt: parsed.data.c, id: parsed.data.i };
}
