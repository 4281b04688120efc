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
  return sealed({ v: 1, s: status ?? null, c: position.createdAt, i: position.id });
}

/** A signed cursor's payload: base64url JSON with its check digest. */
function sealed(payload: unknown): string {
  const body = Buffer.from(JSON.stringify(payload), 'utf8').toString('base64url');
  return `${body}.${checkOf(body)}`;
}

/** The payload of a cursor {@link sealed} made, parsed by `schema`; else InvalidCursorError. */
function unsealed<T>(cursor: string, schema: z.ZodType<T>): T {
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
  const parsed = schema.safeParse(payload);
  if (!parsed.success) throw new InvalidCursorError('is not a cursor this API issued');
  return parsed.data;
}

/** @throws InvalidCursorError for anything {@link encodeCursor} did not produce for this filter */
export function decodeCursor(cursor: string, status: GenerationStatus | undefined): ListPosition {
  const payload = unsealed(cursor, payloadSchema);
  if (payload.s !== (status ?? null)) {
    throw new InvalidCursorError('belongs to a listing with another status filter');
  }
  return { createdAt: payload.c, id: payload.i };
}

const lineCursorSchema = z.strictObject({
  v: z.literal(1),
  /** The batch and the count filter of the walk: a cursor continues only the walk that issued it. */
  b: z.string(),
  k: z.string().nullable(),
  l: z.int().positive(),
});

/**
 * The cursor of a walk through one batch's generations, in line order: the last line returned,
 * with the batch and the walk's filter, tamper-evident as {@link encodeCursor}'s.
 */
export function encodeLineCursor(batchId: string, filter: string | undefined, line: number): string {
  return sealed({ v: 1, b: batchId, k: filter ?? null, l: line });
}

/** @throws InvalidCursorError for anything {@link encodeLineCursor} did not produce for this walk */
export function decodeLineCursor(cursor: string, batchId: string, filter: string | undefined): number {
  const payload = unsealed(cursor, lineCursorSchema);
  if (payload.b !== batchId) throw new InvalidCursorError('is not a cursor this API issued');
  if (payload.k !== (filter ?? null)) {
    throw new InvalidCursorError('belongs to a listing with another status filter');
  }
  return payload.l;
}
